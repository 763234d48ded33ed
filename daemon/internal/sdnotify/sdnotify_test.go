package sdnotify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// listen opens a datagram socket like systemd's notify socket and returns its
// name and a function that reads the next message.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@azaion-sdnotify-test-" + strings.ReplaceAll(t.Name(), "/", "-")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := listen(t, tc.socket)
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			for _, msg := range []string{Ready, Stopping, "STATUS=serving 2 models\n" + Ready} {
				sent, err := Notify(msg)
				if err != nil || !sent {
					t.Fatalf("Notify(%q) = %v, %v", msg, sent, err)
				}
				if got := next(); got != msg {
					t.Fatalf("received %q, sent %q", got, msg)
				}
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v; want nothing sent, no error", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := Notify(Ready); err == nil || !strings.Contains(err.Error(), "relative/path") {
		t.Fatalf("relative socket path: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if _, err := Notify(Ready); err == nil {
		t.Fatal("a socket nobody listens on: no error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 30 * time.Second, ""},
		{"30000000", "42", 30 * time.Second, ""},
		{"30000000", "43", 0, ""}, // another process's watchdog
		{"abc", "", 0, "WATCHDOG_USEC"},
		{"0", "", 0, "WATCHDOG_USEC"},
		{"1000", "x", 0, "WATCHDOG_PID"},
	} {
		got, err := watchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, error containing %q", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

// TestKeepAlive: pings come while the check passes, stop while it fails, and
// the errors are reported; KeepAlive ends with its context.
func TestKeepAlive(t *testing.T) {
	var mu sync.Mutex
	pings, failing := 0, false
	var errs []error
	send := func(s string) (bool, error) {
		if s != Watchdog {
			t.Errorf("sent %q", s)
		}
		mu.Lock()
		defer mu.Unlock()
		pings++
		return true, nil
	}
	healthy := func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errors.New("scheduler stuck")
		}
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return pings }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		keepAlive(ctx, 5*time.Millisecond, healthy, send, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
		close(done)
	}()
	waitFor(t, func() bool { return count() >= 3 })
	mu.Lock()
	failing = true
	mu.Unlock()
	time.Sleep(20 * time.Millisecond) // let a tick in flight finish
	before := count()
	time.Sleep(50 * time.Millisecond)
	if n := count(); n != before {
		t.Fatalf("%d pings while the health check failed", n-before)
	}
	mu.Lock()
	failing = false
	nerr := len(errs)
	mu.Unlock()
	if nerr == 0 {
		t.Error("failed checks were not reported")
	}
	waitFor(t, func() bool { return count() > before })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("keepAlive did not return after its context ended")
	}
}

func TestKeepAliveOff(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := KeepAlive(ctx, nil, nil); err != nil || ctx.Err() != nil {
		t.Fatalf("KeepAlive without a watchdog: %v (want an immediate nil)", err)
	}
	// With a watchdog it pings the real socket.
	sock := filepath.Join(t.TempDir(), "notify")
	next := listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	go func() { _ = KeepAlive(ctx, nil, nil) }()
	for range 3 {
		if got := next(); got != Watchdog {
			t.Fatalf("received %q, want %q", got, Watchdog)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
