package videosrc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactAndScrub(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		secrets  []string
	}{
		{"rtsp://cam:pa%3Ass%40w0rd@10.0.0.5:554/live", "rtsp://cam:xxxxx@10.0.0.5:554/live", []string{"pa:ss@w0rd", "pa%3Ass%40w0rd"}},
		{"rtsp://10.0.0.5/live?token=abc123&ch=1", "rtsp://10.0.0.5/live?ch=1&token=xxxxx", []string{"abc123"}},
		{"rtsps://user@host/x", "rtsps://user@host/x", nil},
		{"rtsp://host/x", "rtsp://host/x", nil},
		{"/var/lib/azaion/media/a.mp4", "/var/lib/azaion/media/a.mp4", nil},
		{"rtsp://u:p w@host/%zz", "rtsp://u:xxxxx@host/%zz", nil}, // does not parse: loose masking
	} {
		got := Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if HasCredentials(tc.in) != (len(tc.secrets) > 0) {
			t.Errorf("HasCredentials(%q) = %v", tc.in, HasCredentials(tc.in))
		}
		for _, sec := range tc.secrets {
			msg := fmt.Sprintf("open %s failed (%s)", tc.in, sec)
			if s := Scrub(msg, tc.in); strings.Contains(s, sec) {
				t.Errorf("Scrub left %q in %q", sec, s)
			}
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("rtsp://cam:hunter2@host/live")
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "source", s)
	js, _ := json.Marshal(struct{ S Secret }{s})
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v", s), logs.String(), string(js)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "cam:xxxxx@host") {
			t.Errorf("printed %q", out)
		}
	}
	if s.Reveal() != "rtsp://cam:hunter2@host/live" {
		t.Error("Reveal lost the source")
	}
	var back struct{ S Secret }
	if err := json.Unmarshal([]byte(`{"S":"rtsp://a:b@h/x"}`), &back); err != nil || back.S.Reveal() != "rtsp://a:b@h/x" {
		t.Errorf("decode: %v %q", err, back.S.Reveal())
	}
}

func TestCheckStream(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when valid
	}{
		{"rtsp://cam:secret@10.0.0.5/live", ""},
		{"RTSPS://host:322/a", ""},
		{"http://host/a.m3u8", "scheme"},
		{"file:///etc/passwd", "scheme"},
		{"rtsp:///nohost", "no host"},
		{"rtsp://cam:secret@host/a\nb", "control"},
		{"rtsp://cam:secret@[::1/x", "does not parse"},
	} {
		_, err := CheckStream(tc.in)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: %v, want ErrBadURL saying %q without the password", tc.in, err, tc.want)
		}
	}
	for in, want := range map[string]bool{"rtsp://h/x": true, "/tmp/a.mp4": false, "a.mp4": false, "C:/x": false, "rtsp+x://h": true} {
		if IsStream(in) != want {
			t.Errorf("IsStream(%q) = %v", in, !want)
		}
	}
}

func TestFormat(t *testing.T) {
	ts := make([]byte, 189)
	ts[0], ts[188] = 0x47, 0x47
	for name, tc := range map[string]struct {
		head []byte
		want string
	}{
		"mp4":   {[]byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"), "mp4"},
		"mkv":   {[]byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81"), "matroska"},
		"avi":   {[]byte("RIFF\x00\x00\x00\x00AVI LIST"), "avi"},
		"ts":    {ts, "mpegts"},
		"h264":  {[]byte("\x00\x00\x00\x01\x67\x64\x00\x1f"), "annexb"},
		"flv":   {[]byte("FLV\x01\x05"), "flv"},
		"text":  {[]byte("hello, world"), ""},
		"jpeg":  {[]byte("\xff\xd8\xff\xe0\x00\x10JFIF"), ""},
		"webp":  {[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), ""},
		"empty": {nil, ""},
	} {
		if got := Format(tc.head); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}
