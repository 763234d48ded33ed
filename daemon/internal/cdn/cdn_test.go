package cdn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/cdn"
	"github.com/azaion/edge/internal/testenv"
)

// shared returns a config and the root credentials of the test server that
// `make test` starts (scripts/services/s3.sh), with a fresh bucket.
func shared(t *testing.T) (cdn.Config, cdn.Credentials) {
	t.Helper()
	cfg := cdn.Config{
		Endpoint:  testenv.Env(t, "AZAION_TEST_S3_ENDPOINT", "the S3 server (versitygw)"),
		Region:    os.Getenv("AZAION_TEST_S3_REGION"),
		Bucket:    fmt.Sprintf("cdn-test-%d", time.Now().UnixNano()),
		PartSize:  5 << 20,
		BaseDelay: 20 * time.Millisecond,
	}
	cred := cdn.Credentials{KeyID: testenv.Env(t, "AZAION_TEST_S3_ACCESS_KEY", "the S3 server"),
		Secret: testenv.Env(t, "AZAION_TEST_S3_SECRET_KEY", "the S3 server")}
	return cfg, cred
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestUploadDownload(t *testing.T) {
	cfg, cred := shared(t)
	ctx := context.Background()
	w, err := cdn.NewWriter(cfg, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := cdn.NewReader(cfg, cred)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int
		body func([]byte) io.Reader
	}{
		{"small seekable", 1000, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"small non-seekable (unsigned payload)", 1000, func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }},
		{"multipart", 12 << 20, func(b []byte) io.Reader { return bytes.NewReader(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := random(tc.size)
			key := "models/m/" + tc.name + "/big"
			if err := w.Upload(ctx, key, tc.body(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			if n, err := r.Size(ctx, key); err != nil || n != int64(len(data)) {
				t.Fatalf("size %d %v", n, err)
			}
			var buf bytes.Buffer
			if _, err := r.Download(ctx, key, &buf, cdn.DownloadOptions{Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatal("downloaded bytes differ")
			}
			buf.Reset()
			if _, err := r.Download(ctx, key, &buf, cdn.DownloadOptions{Offset: 100}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), data[100:]) {
				t.Fatal("ranged download differs")
			}
		})
	}
	t.Run("prefixes", func(t *testing.T) {
		got, err := r.Prefixes(ctx, "models/m/")
		if err != nil || len(got) != 3 {
			t.Fatalf("prefixes %q %v", got, err)
		}
	})
	t.Run("missing object", func(t *testing.T) {
		_, err := r.Download(ctx, "models/none", io.Discard, cdn.DownloadOptions{})
		if !errors.Is(err, cdn.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong size refused", func(t *testing.T) {
		_, err := r.Download(ctx, "models/m/small seekable/big", io.Discard, cdn.DownloadOptions{Size: 5})
		if err == nil {
			t.Fatal("accepted a different size")
		}
	})
	t.Run("wrong read credentials", func(t *testing.T) {
		bad, _ := cdn.NewReader(cfg, cdn.Credentials{KeyID: "nobody", Secret: "wrong"})
		_, err := bad.Download(ctx, "models/m/small seekable/big", io.Discard, cdn.DownloadOptions{})
		if !errors.Is(err, cdn.ErrAccess) {
			t.Fatalf("err = %v", err)
		}
	})
}

// gateway is a private versitygw instance that a test can stop and restart.
type gateway struct {
	bin, dir, addr string
	cred           cdn.Credentials
	cmd            *exec.Cmd
}

func (g *gateway) start(t *testing.T) {
	t.Helper()
	g.cmd = exec.Command(g.bin, "--port", g.addr, "-q", "posix", g.dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+g.cred.KeyID, "ROOT_SECRET_ACCESS_KEY="+g.cred.Secret)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", g.addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("versitygw did not start")
}

func (g *gateway) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Kill()
		g.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// slowWriter lets the test cut the connection in the middle of a download.
type slowWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	reached chan struct{}
	at      int
	once    sync.Once
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.Len() >= w.at {
		w.once.Do(func() { close(w.reached) })
	}
	time.Sleep(time.Millisecond)
	return len(p), nil
}

func (w *slowWriter) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}

func TestResumeAfterCut(t *testing.T) {
	g := &gateway{
		bin:  testenv.Env(t, "AZAION_TEST_VERSITYGW", "the versitygw binary"),
		dir:  t.TempDir(),
		addr: freeAddr(t),
		cred: cdn.Credentials{KeyID: "resume-test", Secret: "resume-secret-0123456789"},
	}
	g.start(t)
	t.Cleanup(g.kill)
	cfg := cdn.Config{Endpoint: "http://" + g.addr, Bucket: "resume", BaseDelay: 100 * time.Millisecond, MaxAttempts: 20}
	ctx := context.Background()
	w, _ := cdn.NewWriter(cfg, g.cred)
	if err := w.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	data := random(48 << 20)
	if err := w.Upload(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	r, _ := cdn.NewReader(cfg, g.cred)
	sw := &slowWriter{reached: make(chan struct{}), at: 4 << 20}
	type req struct{ start, had int64 }
	var mu sync.Mutex
	var reqs []req
	done := make(chan error, 1)
	go func() {
		_, err := r.Download(ctx, "big", sw, cdn.DownloadOptions{Size: int64(len(data)), OnRequest: func(start int64) {
			mu.Lock()
			reqs = append(reqs, req{start, int64(sw.Len())})
			mu.Unlock()
		}})
		done <- err
	}()
	<-sw.reached
	g.kill() // the CDN goes away in the middle of the download
	time.Sleep(300 * time.Millisecond)
	g.start(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(sw.buf.Bytes()) != sha256.Sum256(data) {
		t.Fatal("resumed download differs from the object")
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests (start offset, bytes held): %v", reqs)
	if len(reqs) < 2 || reqs[0].start != 0 {
		t.Fatalf("expected a first request from 0 and a resumed one, got %v", reqs)
	}
	resumed := false
	for _, q := range reqs[1:] {
		if q.start != q.had {
			t.Fatalf("resumed at %d while holding %d bytes", q.start, q.had)
		}
		if q.start >= int64(sw.at) && q.start < int64(len(data)) {
			resumed = true
		}
	}
	if !resumed {
		t.Fatalf("no request resumed in the middle: %v", reqs)
	}
}

// TestResumeComplete: a download that got every byte but was not committed
// (a crash between the last byte and the commit) resumes with nothing left
// to fetch: the CDN answers the "bytes=<size>-" request with 416, which
// means "done", not a permanent failure. A resume beyond the object's end
// is refused with an error that says so.
func TestResumeComplete(t *testing.T) {
	cfg, cred := shared(t)
	ctx := context.Background()
	w, _ := cdn.NewWriter(cfg, cred)
	if err := w.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	data := random(100 << 10)
	if err := w.Upload(ctx, "complete", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	r, _ := cdn.NewReader(cfg, cred)
	var buf bytes.Buffer
	var starts []int64
	n, err := r.Download(ctx, "complete", &buf, cdn.DownloadOptions{Offset: int64(len(data)),
		OnRequest: func(s int64) { starts = append(starts, s) }})
	if err != nil || n != int64(len(data)) || buf.Len() != 0 {
		t.Fatalf("resume of a complete download: size %d, wrote %d, err %v (requests from %v)", n, buf.Len(), err, starts)
	}
	_, err = r.Download(ctx, "complete", &buf, cdn.DownloadOptions{Offset: int64(len(data)) + 10})
	if !errors.Is(err, cdn.ErrBeyondEnd) || buf.Len() != 0 {
		t.Fatalf("resume beyond the end: %v", err)
	}
	_, err = r.Download(ctx, "complete", &buf, cdn.DownloadOptions{Offset: 10, Size: 5})
	if !errors.Is(err, cdn.ErrBeyondEnd) || buf.Len() != 0 {
		t.Fatalf("offset beyond the expected size: %v", err)
	}
}

// rangeIgnorer is an S3-shaped server that ignores Range: every GET answers
// 200 with the whole object (as some misbehaving CDN front ends do), and the
// first one is cut after cutAt bytes. It counts the handlers still running:
// a response body the client neither reads to the end nor closes keeps its
// handler blocked in Write.
type rangeIgnorer struct {
	data   []byte
	cutAt  int
	mu     sync.Mutex
	gets   int
	ranges []string
	active sync.WaitGroup
	live   atomic.Int32
}

func (s *rangeIgnorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	s.live.Add(1)
	defer s.active.Done()
	defer s.live.Add(-1)
	w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		return
	}
	s.mu.Lock()
	s.gets++
	first := s.gets == 1
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	body := s.data
	if first {
		body = body[:s.cutAt]
	}
	for len(body) > 0 {
		n := min(len(body), 64<<10)
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
	}
	if first { // cut the connection in the middle of the body
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

// TestServerIgnoresRange: after an interruption the resumed request's Range
// is ignored and the whole object comes again with 200; Download skips the
// bytes it already has instead of failing, and every response body is
// closed (no handler is left blocked writing to an abandoned connection).
func TestServerIgnoresRange(t *testing.T) {
	data := random(24 << 20)
	s := &rangeIgnorer{data: data, cutAt: 5 << 20}
	srv := httptest.NewServer(s)
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	r, err := cdn.NewReader(cdn.Config{Endpoint: srv.URL, Bucket: "b", BaseDelay: time.Millisecond, MaxAttempts: 4},
		cdn.Credentials{KeyID: "k", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var last int64
	n, err := r.Download(context.Background(), "big", h, cdn.DownloadOptions{Progress: func(done, _ int64) { last = done }})
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d response bodies were never closed (handlers still writing)", s.live.Load())
	}
	if err != nil || n != int64(len(data)) {
		t.Fatalf("download: %d bytes, %v (requests: %d, ranges %q)", n, err, s.gets, s.ranges)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("downloaded bytes differ from the object")
	}
	if last != int64(len(data)) {
		t.Fatalf("progress ended at %d of %d", last, len(data))
	}
	if s.gets < 2 || s.ranges[1] == "" {
		t.Fatalf("expected a resumed, ranged request; ranges %q", s.ranges)
	}
}
