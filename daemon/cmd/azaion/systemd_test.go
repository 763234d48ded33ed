package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
)

// TestServeNotifiesSystemd runs `azaion serve` as systemd runs a Type=notify
// service with WatchdogSec=: it reports READY=1 once it listens, pings the
// watchdog (WATCHDOG=1) at half the interval, and STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	dir := t.TempDir()
	notify := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	cfg := filepath.Join(dir, "azaion.yaml")
	if err := os.WriteFile(cfg, []byte("onnx: {enabled: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "azaion.sock")
	serve := startProc(t, azaion, append(os.Environ(),
		"AZAION_CONFIG="+cfg, "AZAION_HTTP_ADDR=", "AZAION_SOCKET="+sock,
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"), "AZAION_MODELS_DIR="+filepath.Join(dir, "models"),
		"NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=200000"), "serve")
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means the socket accepts connections.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("READY=1 sent before the socket listens: %v", err)
	}
	c.Close()
	start := time.Now()
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("3 watchdog pings took %v with WATCHDOG_USEC=200000 (want one per 100ms)", d)
	}
	if err := serve.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q after SIGTERM, want STOPPING=1", got)
		}
	}
}
