package main

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a long-running azaion process (serve, ingest) started by a test;
// it is killed at cleanup if the test did not stop it.
type proc struct {
	cmd    *exec.Cmd
	logs   lockedBuffer
	exited chan error
}

func startProc(t *testing.T, azaion string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(azaion, args...), exited: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("azaion %s output:\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit error; a process still running
// after 30 s is killed and fails the test.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s did not exit within 30s of SIGTERM", p.cmd.Path)
		return nil
	}
}

// runCLI runs one azaion command to completion and returns its combined
// output; a non-zero exit fails the test.
func runCLI(t *testing.T, azaion string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(azaion, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("azaion %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitUntil polls cond until it returns nil or the time is up.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
