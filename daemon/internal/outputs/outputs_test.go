package outputs

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newStore(t *testing.T, dir string, ttl time.Duration) *Store {
	t.Helper()
	s, err := New(dir, ttl, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, time.Minute)
	now := time.Now()
	s.now = func() time.Time { return now }

	id, part := s.Reserve()
	if filepath.Dir(part) != dir || !strings.HasSuffix(part, ".part.mp4") {
		t.Fatalf("part path %s", part)
	}
	if err := os.WriteFile(part, []byte("video bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a part file is fetchable: %v", err)
	}
	o, err := s.Commit(id)
	if err != nil || o.Size != 11 || !o.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("commit: %+v %v", o, err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("part file left behind: %v", err)
	}

	// Served over HTTP, with ranges.
	mux := http.NewServeMux()
	s.Register(func(p string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
			}
		})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/outputs/"+id, nil)
	req.Header.Set("Range", "bytes=6-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(b) != "bytes" || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET range: %d %q %v", resp.StatusCode, b, resp.Header)
	}

	// Expiry removes the file.
	now = now.Add(time.Minute)
	if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired output still served: %v", err)
	}
	s.expire()
	if _, err := os.Stat(filepath.Join(dir, id+".mp4")); !os.IsNotExist(err) {
		t.Fatalf("expired file left: %v", err)
	}

	// Discard and Remove.
	id2, part2 := s.Reserve()
	os.WriteFile(part2, []byte("x"), 0o644)
	s.Discard(id2)
	if _, err := os.Stat(part2); !os.IsNotExist(err) {
		t.Fatal("discarded part left")
	}
	id3, part3 := s.Reserve()
	os.WriteFile(part3, []byte("x"), 0o644)
	if _, err := s.Commit(id3); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(id3); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(id3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// TestStoreRestart: outputs of an earlier run keep their time to live,
// part files and strays are removed.
func TestStoreRestart(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o644)
		old := time.Now().Add(-age)
		os.Chtimes(p, old, old)
	}
	write("fresh.mp4", time.Minute)
	write("stale.mp4", 2*time.Hour)
	write("half.part.mp4", time.Minute)
	write("stray.txt", time.Minute)
	s := newStore(t, dir, time.Hour)
	if _, err := s.Get("fresh"); err != nil {
		t.Fatalf("fresh output lost: %v", err)
	}
	for _, gone := range []string{"stale.mp4", "half.part.mp4", "stray.txt"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left at start: %v", gone, err)
		}
	}
}
