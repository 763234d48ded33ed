// Package listen opens the daemon's listeners: TCP on a configured address
// and a Unix socket with a given mode and group. It is imported only by the
// daemon.
package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// TCP listens on addr.
func TCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	return ln, nil
}

// afterBind, when set (tests), runs right after the socket is bound, with
// the path it was bound at.
var afterBind func(bound string)

// Unix listens on a Unix socket at path with the given mode, owned by group
// when that group exists. The socket is bound inside a private folder (mode
// 0700) beside path, given its mode and group there, and only then renamed
// to path: it never exists at path with the mode the process umask would
// give it. A stale socket file (nothing answering) is replaced; a live one is
// an error, so two daemons never share a socket. The caller removes path
// after closing the listener.
func Unix(path string, mode os.FileMode, group string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another daemon is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	private, err := os.MkdirTemp(dir, ".azaion-sock-")
	if err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, err
	}
	if afterBind != nil {
		afterBind(tmp)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("chmod socket: %w", err))
	}
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			if err := os.Chown(tmp, -1, gid); err != nil && !errors.Is(err, os.ErrPermission) {
				return fail(fmt.Errorf("chown socket to group %s: %w", group, err))
			}
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("socket %s: %w", path, err))
	}
	return ln, nil
}
