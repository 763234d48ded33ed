//go:build !unix

package ingest

import (
	"errors"
	"os"
)

// errLocked: another open file description holds the lock.
var errLocked = errors.New("locked")

// flock is a no-op where flock(2) does not exist: one ingest per data root
// is then up to the operator.
func flock(f *os.File) error { return nil }
