package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the file under the data root that the running ingest holds
// locked (flock) for its whole life, with its pid inside: a second ingest of
// the same data root would remove the first one's work folders.
const LockFile = ".ingest.lock"

// ErrDataRootBusy: another ingest holds the data root.
var ErrDataRootBusy = errors.New("the data root is in use by another ingest")

// rootLock is a held lock on a data root.
type rootLock struct{ f *os.File }

// lockRoot takes the data root's lock without waiting and records this
// process's pid in it. When another process holds it, the error is
// ErrDataRootBusy naming the root and, when it can be read, the holder's pid.
func lockRoot(root string) (*rootLock, error) {
	path := filepath.Join(root, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data root: lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data root: lock %s: %w", path, err)
		}
		holder := ""
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("%w: %s is locked by another ingest%s (%s); run one ingest per data root: "+
			"stop the other one, or give this one another data.root", ErrDataRootBusy, root, holder, path)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &rootLock{f: f}, nil
}

// release gives the lock up (closing the file releases the flock).
func (l *rootLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
