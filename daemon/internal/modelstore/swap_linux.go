package modelstore

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// exchange swaps two existing paths atomically (renameat2 RENAME_EXCHANGE).
// Where the file system cannot, it falls back to two renames, with a moment
// in between where dst is absent (never half-written).
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("exchange %s and %s: %w", a, b, err)
	}
	return exchangeByRenames(a, b)
}
