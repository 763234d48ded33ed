package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
)

// TestIngestCLI runs the real binary: `azaion annotations publish DIR`, the
// ingest inside `azaion serve` (ingest.enabled, metrics on /metrics), `azaion
// ingest status`, then `azaion ingest` in the foreground for validated events.
func TestIngestCLI(t *testing.T) {
	uri := testenv.Env(t, "AZAION_TEST_STREAM_URI", "RabbitMQ with the stream plugin")
	// A shared lock on the broker: a test that kills it (daemon/internal/ingest) waits.
	lock, err := os.Open(testenv.Env(t, "AZAION_TEST_RABBITMQ_LOCK", "the RabbitMQ lock file"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	dir := t.TempDir()
	src, data := filepath.Join(dir, "src"), filepath.Join(dir, "data")
	const n = 30
	for _, d := range []string{"images", "labels"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("frame_%03d", i)
		if err := os.WriteFile(filepath.Join(src, "images", name+".jpg"), annotationtest.JPEG(uint64(i), 32, 24), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "labels", name+".txt"), fmt.Appendf(nil, "%d 0.5 0.5 0.25 0.25\n", i%80), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stream := fmt.Sprintf("cli-%d", time.Now().UnixNano())
	addr := testenv.FreeTCPAddr(t)
	cfg := filepath.Join(dir, "azaion.yaml")
	if err := os.WriteFile(cfg, []byte("onnx:\n  enabled: false\ningest:\n  enabled: true\n  lag_interval: 200ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AZAION_CONFIG="+cfg, "AZAION_STREAM_URI="+uri, "AZAION_STREAM="+stream,
		"AZAION_DATA_DIR="+data, "AZAION_HTTP_ADDR="+addr, "AZAION_SOCKET="+filepath.Join(dir, "azaion.sock"),
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"), "AZAION_MODELS_DIR="+filepath.Join(dir, "models"), "AZAION_LOG_FORMAT=json")
	run := func(args ...string) string {
		t.Helper()
		return runCLI(t, azaion, env, args...)
	}
	if out := run("annotations", "publish", "-author", "tester", src); !strings.Contains(out, fmt.Sprintf("published %d created messages", n)) {
		t.Fatalf("publish: %s", out)
	}

	serve := startProc(t, azaion, env, "serve")
	ingestWaitFiles(t, filepath.Join(data, "data-seed", "images"), n)
	ingestWaitFor(t, "metrics", func() bool {
		body := ingestGet(t, "http://"+addr+"/metrics")
		return strings.Contains(body, fmt.Sprintf("azaion_ingest_last_offset %d", n-1)) &&
			strings.Contains(body, "azaion_ingest_lag_messages 0")
	})
	_ = serve.stop(t)
	if secret := strings.TrimPrefix(uri, "rabbitmq-stream://"); strings.Contains(serve.logs.String(), strings.SplitN(secret, "@", 2)[0]+"@") {
		t.Fatalf("the daemon logged the broker credentials:\n%s", serve.logs.String())
	}

	status := run("ingest", "status")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`last offset\s+29\n`), regexp.MustCompile(`tail offset\s+29\n`),
		regexp.MustCompile(`lag\s+0\n`), regexp.MustCompile(`rejected\s+0 `), regexp.MustCompile(`running\s+no`),
	} {
		if !want.MatchString(status) {
			t.Fatalf("ingest status does not match %s:\n%s", want, status)
		}
	}

	run("annotations", "publish", "-op", "validated", src)
	fg := startProc(t, azaion, env, "ingest")
	ingestWaitFiles(t, filepath.Join(data, "data", "images"), n)
	ingestWaitFiles(t, filepath.Join(data, "data-seed", "images"), 0)
	if err := fg.stop(t); err != nil {
		t.Fatalf("azaion ingest after SIGTERM: %v", err)
	}
}

func ingestWaitFiles(t *testing.T, dir string, n int) {
	t.Helper()
	ingestWaitFor(t, fmt.Sprintf("%d files in %s", n, dir), func() bool {
		ents, err := os.ReadDir(dir)
		return err == nil && len(ents) == n
	})
}

func ingestWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ingestGet(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
