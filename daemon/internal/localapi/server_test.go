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
	s := New(Options{Sched: sched.New(nil, sched.Options{QueueSize: 4, Log: log}), MaxBodyBytes: 1 << 20, MaxPixels: 1 << 20,
		RequestTimeout: time.Second, ModelsHint: "copy a model", Log: log})
	srv := httptest.NewServer(s.Handler(Listener{Token: token, TCP: true}))
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

// TestSlowUploads: a body that trickles in is cut off after the body
// timeout, and uploads beyond the cap are refused at once with 429.
func TestSlowUploads(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(Options{Sched: sched.New(nil, sched.Options{QueueSize: 4, Log: log}), MaxBodyBytes: 1 << 20, MaxPixels: 1 << 20,
		RequestTimeout: time.Second, BodyTimeout: 400 * time.Millisecond, MaxUploads: 2, Log: log})
	srv := httptest.NewServer(s.Handler(Listener{TCP: true}))
	defer srv.Close()
	slow := func() (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte{0xFF, 0xD8})
			time.Sleep(3 * time.Second) // never finishes in time
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/detect", pr)
		req.Header.Set("Content-Type", "image/jpeg")
		return http.DefaultClient.Do(req)
	}
	type result struct {
		status int
		took   time.Duration
	}
	res := make(chan result, 3)
	for range 2 {
		go func() {
			start := time.Now()
			resp, err := slow()
			if err != nil {
				res <- result{-1, time.Since(start)}
				return
			}
			resp.Body.Close()
			res <- result{resp.StatusCode, time.Since(start)}
		}()
	}
	time.Sleep(150 * time.Millisecond) // both are uploading
	start := time.Now()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/detect", strings.NewReader("xx"))
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Fatalf("third upload: %d (Retry-After %q) after %s, want 429 at once", resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start))
	}
	for range 2 {
		r := <-res
		if r.status != 408 || r.took > 2*time.Second {
			t.Fatalf("slow upload: %d after %s, want 408 after the 400ms body timeout", r.status, r.took)
		}
	}
	// The slots are free again.
	req, _ = http.NewRequest("POST", srv.URL+"/v1/detect", strings.NewReader("xx"))
	req.Header.Set("Content-Type", "image/jpeg")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 415 {
		t.Fatalf("after the slow uploads: %v %v, want the handler's 415", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// TestMetricsModelLabel: requests naming models that do not exist share one
// label value, so made-up names cannot create series without bound.
func TestMetricsModelLabel(t *testing.T) {
	srv := newTestServer(t, "")
	for _, name := range []string{"madeup1", "madeup2", "x:y"} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/detect?model="+name, strings.NewReader("not an image"))
		req.Header.Set("Content-Type", "image/jpeg")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "madeup") || !strings.Contains(string(b), `model="_unknown"`) {
		t.Fatalf("metrics carry the made-up names or lack the shared label:\n%s", b)
	}
}
