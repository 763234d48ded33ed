package listen

import (
	"net"
	"os"
	"path/filepath"
	"strings"
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
