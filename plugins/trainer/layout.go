// Package trainer is the trainer/augmenter plugin (binary
// azaion-plugin-trainer): label validation, 8x augmentation with OpenCV
// (gocv) and dataset formation on the data root, and training, export and
// the accuracy gate through a supervised Python worker (worker/, Ultralytics
// in the venv `make deps` builds), run as jobs of the sdk/trainer contract.
// Its main package is cmd/azaion-plugin-trainer.
package trainer

import (
	"io"
	"os"
	"path/filepath"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/dataroot"
)

// Folders of the trainer's own inside the data root's folders (the data
// root's layout is sdk/dataroot).
const (
	dirReasons = "reasons"
	dirTmp     = ".tmp"
)

// listImages returns the image file names in dir/images, sorted. A missing
// folder is empty.
func listImages(dir string) ([]string, error) {
	return dataroot.ListImages(filepath.Join(dir, dataroot.Images))
}

// labelPath returns the label file of image name in dir.
func labelPath(dir, name string) string {
	return filepath.Join(dir, dataroot.Labels, dataroot.LabelFile(name))
}

// writeAtomic writes a data file (mode 0644) through a temporary file in
// tmpDir (on the same file system), so a crash never leaves a partial file.
func writeAtomic(tmpDir, path string, data []byte) error {
	return atomicfile.WriteVia(tmpDir, path, data, 0o644)
}

// copyFile copies src to dst (dst is created or truncated) and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirs creates folders (and parents).
func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
