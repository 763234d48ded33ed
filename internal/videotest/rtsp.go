package videotest

import (
	"bufio"
	_ "embed"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
)

//go:embed rtsp_server.py
var rtspServerPy []byte

// Python is the interpreter that has Debian's python3-gi and the GStreamer
// typelibs (not a pyenv or venv python on PATH).
const Python = "/usr/bin/python3"

// RTSPServer is a running test RTSP server serving one raw H.264 clip in a
// loop, in real time, at rtsp://127.0.0.1:PORT/clip. The port stays the same
// across Kill and Start, so a client can reconnect to the same URL.
type RTSPServer struct {
	t          testing.TB
	script     string
	clip       string
	fps        int
	user, pass string
	addr       string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs strings.Builder
}

// StartRTSP starts a server for clip (an Annex B .h264 file, see
// Clip.Format) made at fps frames per second (the stream's timing comes
// from the clip); with user set, it requires Basic auth with user and pass.
// It is killed at the end of the test.
func StartRTSP(t testing.TB, clip string, fps int, user, pass string) *RTSPServer {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Fatalf("videotest: %s not found (Debian's python3 with python3-gi; run `make deps`): %v", Python, err)
	}
	script := filepath.Join(t.TempDir(), "rtsp_server.py")
	if err := os.WriteFile(script, rtspServerPy, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &RTSPServer{t: t, script: script, clip: clip, fps: fps, user: user, pass: pass, addr: testenv.FreeTCPAddr(t)}
	s.Start()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("rtsp server output:\n%s", s.Logs())
		}
	})
	return s
}

// URL returns the stream's URL, with the credentials when withAuth is set.
func (s *RTSPServer) URL(withAuth bool) string {
	u := url.URL{Scheme: "rtsp", Host: s.addr, Path: "/clip"}
	if withAuth && s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// Addr is the server's host:port.
func (s *RTSPServer) Addr() string { return s.addr }

// Start (re)starts the server process on the same port and waits until it
// listens.
func (s *RTSPServer) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	args := []string{s.script, port, s.clip, strconv.Itoa(s.fps)}
	if s.user != "" {
		args = append(args, s.user, s.pass)
	}
	cmd := exec.Command(Python, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("videotest: start rtsp server: %v", err)
	}
	done := make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if line == "ready" {
				ready <- true
			}
		}
		_ = cmd.Wait()
		close(done)
		ready <- false
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	select {
	case ok := <-ready:
		if !ok {
			s.t.Fatalf("videotest: rtsp server exited before it was ready:\n%s", s.Logs())
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("videotest: rtsp server not ready within 30s:\n%s", s.Logs())
	}
}

// Kill kills the server process (SIGKILL) and waits until it is gone.
func (s *RTSPServer) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Logs returns what the server printed.
func (s *RTSPServer) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// SilentServer listens on a loopback port, accepts connections and never
// answers; it returns an rtsp:// URL pointing at it. It stops at the end of
// the test.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return fmt.Sprintf("rtsp://%s/silent", ln.Addr())
}
