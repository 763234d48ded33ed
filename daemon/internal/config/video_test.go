package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVideoAndStreamsConfig(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "cam.url")
	os.WriteFile(private, []byte("rtsp://cam:hunter2@10.0.0.5/live\n"), 0o600)
	open := filepath.Join(dir, "open.url")
	os.WriteFile(open, []byte("rtsp://cam:hunter2@10.0.0.5/live\n"), 0o644)
	tests := []struct {
		name, yaml string
		env        map[string]string
		err        string
		check      func(t *testing.T, c *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			v := c.Video
			if v.Every != 4 || v.MaxJobs != 2 || v.AnnotateCodec != "mp4v" || v.OutputTTL != time.Hour || v.MediaDir != "" || c.Streams.MaxSessions != 8 {
				t.Fatalf("%+v %+v", v, c.Streams)
			}
		}},
		{name: "yaml", yaml: "video:\n  media_dir: /srv/media\n  every: 2\n  annotate_codec: avc1\n  max_jobs: 3\nstreams:\n  reconnect_max: 5s\n  sessions:\n    - {id: gate, source: 'rtsp://10.0.0.7/stream1', model: m, every: 8, conf: 0.4}\n    - {id: yard, source_file: " + private + "}\n",
			check: func(t *testing.T, c *Config) {
				if c.Video.MediaDir != "/srv/media" || c.Video.Every != 2 || c.Video.AnnotateCodec != "avc1" || c.Streams.ReconnectMax != 5*time.Second {
					t.Fatalf("%+v %+v", c.Video, c.Streams)
				}
				s := c.Streams.Sessions
				if len(s) != 2 || s[0].Every != 8 || s[0].Conf != 0.4 || s[1].Source.Reveal() != "rtsp://cam:hunter2@10.0.0.5/live" {
					t.Fatalf("%+v", s)
				}
				if strings.Contains(s[1].Source.String(), "hunter2") {
					t.Fatal("the session's source prints its password")
				}
			}},
		{name: "media env", env: map[string]string{"AZAION_MEDIA_DIR": "/mnt/video"}, check: func(t *testing.T, c *Config) {
			if c.Video.MediaDir != "/mnt/video" {
				t.Fatal(c.Video.MediaDir)
			}
		}},
		{name: "relative media", yaml: "video:\n  media_dir: media\n", err: "video.media_dir"},
		{name: "bad codec", yaml: "video:\n  annotate_codec: vp09\n", err: "video.annotate_codec"},
		{name: "bad every", yaml: "video:\n  every: 0\n", err: "video.every"},
		{name: "bad ttl", yaml: "video:\n  output_ttl: 10ms\n", err: "video.output_ttl"},
		{name: "inline password", yaml: "streams:\n  sessions:\n    - {id: a, source: 'rtsp://cam:hunter2@h/x'}\n", err: "source_file"},
		{name: "inline token", yaml: "streams:\n  sessions:\n    - {id: a, source: 'rtsp://h/x?token=abc'}\n", err: "source_file"},
		{name: "open source file", yaml: "streams:\n  sessions:\n    - {id: a, source_file: " + open + "}\n", err: "mode 0644"},
		{name: "both sources", yaml: "streams:\n  sessions:\n    - {id: a, source: 'rtsp://h/x', source_file: " + private + "}\n", err: "not both"},
		{name: "no source", yaml: "streams:\n  sessions:\n    - {id: a}\n", err: "no source"},
		{name: "bad scheme", yaml: "streams:\n  sessions:\n    - {id: a, source: 'http://h/x'}\n", err: "scheme"},
		{name: "bad id", yaml: "streams:\n  sessions:\n    - {id: '../a', source: 'rtsp://h/x'}\n", err: "streams.sessions[0].id"},
		{name: "twice", yaml: "streams:\n  sessions:\n    - {id: a, source: 'rtsp://h/x'}\n    - {id: a, source: 'rtsp://h/y'}\n", err: "used twice"},
		{name: "too many", yaml: "streams:\n  max_sessions: 1\n  sessions:\n    - {id: a, source: 'rtsp://h/x'}\n    - {id: b, source: 'rtsp://h/y'}\n", err: "max_sessions"},
		{name: "bad backoff", yaml: "streams:\n  reconnect_min: 2s\n  reconnect_max: 1s\n", err: "reconnect_min"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			var err error
			if tc.yaml != "" {
				err = decodeStrict([]byte(tc.yaml), &c)
			}
			if err == nil {
				err = c.applyEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			}
			if err == nil {
				err = c.Validate()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &c)
		})
	}
}
