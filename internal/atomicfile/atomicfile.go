// Package atomicfile writes files so that a crash never leaves a partial one:
// the data goes to a temporary file, is fsynced, and is renamed over the
// target. It may be imported by the daemon and the plugins alike.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path atomically with mode perm, through a temporary
// file in path's folder.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteVia(filepath.Dir(path), path, data, perm)
}

// WriteVia is Write with the temporary file in tmpDir, which must be on the
// same file system as path (e.g. a folder that watchers of path's folder
// ignore).
func WriteVia(tmpDir, path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(tmpDir, ".tmp-*-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a folder, making the renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
