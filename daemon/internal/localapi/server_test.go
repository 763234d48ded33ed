package localapi

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/sched"
)

func newTestServer(t *testing.T, token string) *httptest.Server {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(Options{Sched: sched.New(nil, 4, log), MaxBodyBytes: 1 << 20, MaxPixels: 1 << 20,
		RequestTimeout: time.Second, ModelsHint: "copy a model", Log: log})
	srv := httptest.NewServer(s.Handler(token))
	t.Cleanup(srv.Close)
	return srv
}

func TestToken(t *testing.T) {
	srv := newTestServer(t, "s3cret")
	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/models", "", 401},
		{"/v1/models", "Bearer wrong", 401},
		{"/v1/models", "s3cret", 401},
		{"/v1/models", "Bearer s3cret", 200},
		{"/healthz", "", 200},
		{"/nope", "Bearer s3cret", 404},
	} {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}
}

func TestDetectRequestErrors(t *testing.T) {
	srv := newTestServer(t, "")
	multi := func(field string, content []byte) (string, *bytes.Buffer) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile(field, "x.jpg")
		fw.Write(content)
		mw.Close()
		return mw.FormDataContentType(), &b
	}
	ctWrong, bodyWrong := multi("picture", []byte{0xFF, 0xD8, 0xFF})
	ctEmpty, bodyEmpty := multi("image", nil)
	for _, tc := range []struct {
		name, ct string
		body     io.Reader
		want     int
		msg      string
	}{
		{"no image field", ctWrong, bodyWrong, 400, `field \"image\"`},
		{"empty image field", ctEmpty, bodyEmpty, 400, "empty"},
		{"broken multipart", "multipart/form-data; boundary=zzz", strings.NewReader("garbage"), 400, "multipart"},
		{"over the body limit", "image/jpeg", bytes.NewReader(make([]byte, 2<<20)), 413, "limit"},
		{"no models", "image/jpeg", strings.NewReader("\xFF\xD8\xFF\xE0 not really"), 422, "header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/v1/detect", tc.ct, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("%d %s, want %d mentioning %s", resp.StatusCode, b, tc.want, tc.msg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}
