package localapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/daemon/internal/sched"
)

// TestBrowserRequests: what a web page open on this machine could make the
// browser send is refused; programs (curl, the Go client, the CLI) are served.
func TestBrowserRequests(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(Options{Sched: sched.New(nil, sched.Options{QueueSize: 4, Log: log}), MaxBodyBytes: 1 << 20, MaxPixels: 1 << 20,
		RequestTimeout: time.Second, Log: log, AllowedHosts: []string{"edge.lan"}, AllowedOrigins: []string{"http://127.0.0.1:3000"}})
	s.Handle("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) error {
		respond.JSON(w, http.StatusCreated, map[string]string{"ok": "yes"})
		return nil
	})
	s.Handle("POST /v1/models/import", func(w http.ResponseWriter, r *http.Request) error {
		respond.JSON(w, http.StatusOK, map[string]string{"ok": "yes"})
		return nil
	})
	tcp := s.Handler(Listener{TCP: true, Addr: "127.0.0.1:8470"})
	sock := s.Handler(Listener{})
	tests := []struct {
		name    string
		h       http.Handler
		method  string
		path    string
		host    string
		headers map[string]string
		body    string
		want    int
	}{
		{"program GET", tcp, "GET", "/v1/models", "127.0.0.1:8470", nil, "", 200},
		{"localhost", tcp, "GET", "/v1/models", "localhost:8470", nil, "", 200},
		{"ipv6 loopback", tcp, "GET", "/v1/models", "[::1]:8470", nil, "", 200},
		{"configured host name", tcp, "GET", "/v1/models", "edge.lan:8470", nil, "", 200},
		{"DNS rebinding: foreign Host", tcp, "GET", "/v1/models", "attacker.example:8470", nil, "", 403},
		{"127-prefixed name is not loopback", tcp, "GET", "/v1/models", "127.0.0.1.attacker.example", nil, "", 403},
		{"socket: any Host", sock, "GET", "/v1/models", "azaion", nil, "", 200},
		{"cross-site simple form POST", tcp, "POST", "/v1/jobs", "127.0.0.1:8470",
			map[string]string{"Origin": "https://attacker.example", "Content-Type": "application/x-www-form-urlencoded"}, "type=validate", 403},
		{"cross-site fetch no-cors text/plain", tcp, "POST", "/v1/jobs", "127.0.0.1:8470",
			map[string]string{"Origin": "null", "Content-Type": "text/plain"}, `{"type":"validate"}`, 403},
		{"cross-site navigation without Origin", tcp, "GET", "/v1/jobs", "127.0.0.1:8470",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403},
		{"other local origin", tcp, "GET", "/v1/models", "127.0.0.1:8470",
			map[string]string{"Origin": "http://localhost:5173"}, "", 403},
		{"configured origin", tcp, "POST", "/v1/jobs", "127.0.0.1:8470",
			map[string]string{"Origin": "http://127.0.0.1:3000", "Content-Type": "application/json"}, `{"type":"validate"}`, 201},
		{"JSON route without its type", tcp, "POST", "/v1/jobs", "127.0.0.1:8470",
			map[string]string{"Content-Type": "text/plain"}, `{"type":"validate"}`, 415},
		{"JSON route as form", sock, "POST", "/v1/jobs", "azaion",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `type=validate`, 415},
		{"JSON route", sock, "POST", "/v1/jobs", "azaion",
			map[string]string{"Content-Type": "application/json; charset=utf-8"}, `{"type":"validate"}`, 201},
		{"detect as form", tcp, "POST", "/v1/detect", "127.0.0.1:8470",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "xx", 415},
		{"detect as text", tcp, "POST", "/v1/detect", "127.0.0.1:8470",
			map[string]string{"Content-Type": "text/plain"}, "xx", 415},
		{"detect with an image type reaches the handler", tcp, "POST", "/v1/detect", "127.0.0.1:8470",
			map[string]string{"Content-Type": "image/jpeg"}, "xx", 415 /* not a JPEG: the handler's own 415 */},
		{"model import as a cross-site form", tcp, "POST", "/v1/models/import?name=m", "127.0.0.1:8470",
			map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "--x--", 415},
		{"model import as text", tcp, "POST", "/v1/models/import?name=m", "127.0.0.1:8470",
			map[string]string{"Content-Type": "text/plain"}, "xx", 415},
		{"model import as JSON", sock, "POST", "/v1/models/import?name=m", "azaion",
			map[string]string{"Content-Type": "application/json"}, "{}", 415},
		{"model import", sock, "POST", "/v1/models/import?name=m", "azaion",
			map[string]string{"Content-Type": "application/octet-stream"}, "xx", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, strings.NewReader(tc.body))
			req.Host = tc.host
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.want == 415 && tc.path == "/v1/detect" && tc.headers["Content-Type"] == "image/jpeg" &&
				!strings.Contains(rec.Body.String(), "not a JPEG") {
				t.Fatalf("the handler did not see the request: %s", rec.Body)
			}
		})
	}
}
