package listen

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "azaion.sock")
	ln, err := Unix(path, 0o660, "no-such-group-azaion-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o660 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v", st.Mode(), err)
	}
	// A live socket is not taken over.
	if _, err := Unix(path, 0o660, ""); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	// A stale one (its listener gone, file left) is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := Unix(path, 0o600, "")
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln2.Close()
	// A regular file in the way is an error, not deleted.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Unix(file, 0o660, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("the regular file was removed")
	}
}

func TestTCP(t *testing.T) {
	ln, err := TCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := TCP(ln.Addr().String()); err == nil {
		t.Fatal("listening twice on one port succeeded")
	}
}

// TestUnixNeverWide: with a umask that would leave the socket open to all,
// nobody can reach it before it has its mode: when it is bound, it is not at
// its path yet and its folder is private.
func TestUnixNeverWide(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "azaion.sock")
	var checked bool
	afterBind = func(bound string) {
		checked = true
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("the socket is at %s before its mode is set", path)
		}
		st, err := os.Stat(filepath.Dir(bound))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("the socket is bound in %s with mode %v (%v): reachable by others", filepath.Dir(bound), st.Mode(), err)
		}
	}
	defer func() { afterBind = nil }()
	ln, err := Unix(path, 0o600, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := os.Stat(path)
	if !checked || err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v (hook ran: %v)", st.Mode(), err, checked)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	}
	c.Close()
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}
