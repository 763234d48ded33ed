//go:build !linux

package ingest

import (
	"errors"
	"os"
)

func syncFS(f *os.File) error { return errors.New("syncfs is not available on this system") }

const haveSyncFS = false
