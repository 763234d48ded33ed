package ingest

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openTmpfile opens an unnamed regular file on dir's file system
// (O_TMPFILE): nothing names it until linkTmpfile, and a crash before that
// leaves nothing visible (the file system frees the inode). It returns
// errNoTmpfile when the file system or kernel cannot.
func openTmpfile(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%s: %w (%w)", dir, errNoTmpfile, err)
		}
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// linkTmpfile gives the unnamed file f the name to: one new directory
// entry, atomically, with the content written so far. It fails with an
// error matching fs.ErrExist when to exists (it never replaces a file).
func linkTmpfile(f *os.File, to string) error {
	fd := int(f.Fd())
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, to, unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		// No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, so it is the second choice.
		if err2 := unix.Linkat(fd, "", unix.AT_FDCWD, to, unix.AT_EMPTY_PATH); err2 == nil {
			return nil
		}
	}
	if err != nil {
		return &os.LinkError{Op: "linkat", Old: f.Name(), New: to, Err: err}
	}
	return nil
}
