package pluginmgr

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/pluginconfig"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// copyPlugin copies the built ONNX plugin and its checksum into a fresh folder.
func copyPlugin(t *testing.T) string {
	t.Helper()
	src := testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	dst := filepath.Join(t.TempDir(), "azaion-plugin-onnx")
	for _, suffix := range []string{"", ".sha256"} {
		b, err := os.ReadFile(src + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func spec(t *testing.T, path string, started chan<- int) Spec[backend.Backend] {
	cfg := pluginconfig.DefaultONNX()
	cfg.Library = testenv.ORTLib(t)
	env, err := pluginconfig.Encode(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return Spec[backend.Backend]{
		Name: "onnx", Path: path, Plugins: backend.PluginSet(nil), Dispense: backend.PluginName,
		Env:        []string{env},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnStart: func(ctx context.Context, b backend.Backend) error {
			if _, err := b.Info(ctx); err != nil {
				return err
			}
			if started != nil {
				started <- 1
			}
			return nil
		},
		Health: func(ctx context.Context, b backend.Backend) error { return b.Health(ctx) },
	}
}

func run(t *testing.T, p *Plugin[backend.Backend]) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if st := p.Status(); st.State != StateStopped {
			t.Errorf("state after stop: %s", st.State)
		}
	})
}

func waitState(t *testing.T, p *Plugin[backend.Backend], want State, errPart string) Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := p.Status()
		if st.State == want && strings.Contains(st.LastError, errPart) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin state %s (%s), want %s with %q", st.State, st.LastError, want, errPart)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLaunchAndChecksum(t *testing.T) {
	testenv.ORTLib(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("verified", func(t *testing.T) {
		path := copyPlugin(t)
		started := make(chan int, 4)
		p := New(spec(t, path, started), log)
		run(t, p)
		select {
		case <-p.Ready():
		case <-time.After(30 * time.Second):
			t.Fatalf("not ready: %+v", p.Status())
		}
		if _, err := p.Get(); err != nil {
			t.Fatal(err)
		}
		st := p.Status()
		if st.PID == 0 || st.State != StateReady {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("tampered binary", func(t *testing.T) {
		path := copyPlugin(t)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("tampered"))
		f.Close()
		p := New(spec(t, path, nil), log)
		run(t, p)
		waitState(t, p, StateDown, "checksum")
		if _, err := p.Get(); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("Get on a tampered plugin: %v", err)
		}
	})

	t.Run("missing checksum file", func(t *testing.T) {
		path := copyPlugin(t)
		os.Remove(path + ".sha256")
		p := New(spec(t, path, nil), log)
		run(t, p)
		waitState(t, p, StateDown, "refusing to launch an unverified binary")
	})

	t.Run("relaunch after exit", func(t *testing.T) {
		path := copyPlugin(t)
		started := make(chan int, 4)
		p := New(spec(t, path, started), log)
		run(t, p)
		<-started
		first := p.Status().PID
		proc, _ := os.FindProcess(first)
		proc.Kill()
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatalf("not relaunched: %+v", p.Status())
		}
		<-p.Ready()
		st := p.Status()
		if st.PID == first || st.Restarts != 1 {
			t.Fatalf("after relaunch: %+v (first pid %d)", st, first)
		}
	})
}

// TestStartAndStuck: a start that does not finish in time, and a plugin
// whose calls make no progress, are killed and relaunched; a plugin that
// cannot load its runtime library reports its own error and is retried
// slowly, as a configuration error.
func TestStartAndStuck(t *testing.T) {
	testenv.ORTLib(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("start deadline", func(t *testing.T) {
		sp := spec(t, copyPlugin(t), nil)
		sp.StartTimeout = 300 * time.Millisecond
		sp.OnStart = func(ctx context.Context, b backend.Backend) error { <-ctx.Done(); return ctx.Err() }
		p := New(sp, log)
		run(t, p)
		st := waitState(t, p, StateDown, "did not finish starting")
		if st.ConfigError {
			t.Fatalf("a slow start is not a configuration error: %+v", st)
		}
	})

	t.Run("stuck calls", func(t *testing.T) {
		started := make(chan int, 4)
		sp := spec(t, copyPlugin(t), started)
		sp.StuckTimeout = 500 * time.Millisecond
		p := New(sp, log)
		run(t, p)
		<-started
		<-p.Ready()
		first := p.Status().PID
		p.Begin() // a call that never finishes
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatalf("not relaunched: %+v", p.Status())
		}
		<-p.Ready()
		if st := p.Status(); st.StuckKills != 1 || st.PID == first || st.Restarts != 1 {
			t.Fatalf("after the stuck kill: %+v", st)
		}
	})

	t.Run("missing runtime library", func(t *testing.T) {
		sp := spec(t, copyPlugin(t), nil)
		cfg := pluginconfig.DefaultONNX()
		cfg.Library = filepath.Join(t.TempDir(), "no-such-libonnxruntime.so")
		env, _ := pluginconfig.Encode(&cfg)
		sp.Env = []string{env}
		sp.ConfigBackoff = time.Hour
		p := New(sp, log)
		run(t, p)
		st := waitState(t, p, StateDown, "no-such-libonnxruntime.so")
		if !st.ConfigError || strings.Contains(st.LastError, "Unrecognized remote plugin message") {
			t.Fatalf("status %+v: want the plugin's own error, as a configuration error", st)
		}
		time.Sleep(time.Second)
		if st := p.Status(); st.Restarts != 1 {
			t.Fatalf("a configuration error was retried at once: %+v", st)
		}
	})
}
