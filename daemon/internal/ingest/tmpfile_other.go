//go:build !linux

package ingest

import "os"

func openTmpfile(dir string) (*os.File, error) { return nil, errNoTmpfile }

func linkTmpfile(f *os.File, to string) error { return errNoTmpfile }
