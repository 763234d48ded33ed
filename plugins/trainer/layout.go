// Package trainer is the trainer/augmenter plugin (binary
// azaion-plugin-trainer): label validation, 8x augmentation with OpenCV
// (gocv), and dataset formation on the data root, run as jobs of the
// sdk/trainer contract. Its main package is cmd/azaion-plugin-trainer.
package trainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/azaion/edge/internal/atomicfile"
)

// Folders under the data root (see DESIGN.md section 9).
const (
	DirData      = "data"
	DirProcessed = "data-processed"
	DirDatasets  = "datasets"
	DirCorrupted = "data-corrupted"
	dirImages    = "images"
	dirLabels    = "labels"
	dirReasons   = "reasons"
	dirTmp       = ".tmp"
)

// imageExts are the image file extensions the trainer reads.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".webp": true}

// isImage reports whether name looks like an image the trainer reads.
func isImage(name string) bool {
	return !strings.HasPrefix(name, ".") && imageExts[strings.ToLower(filepath.Ext(name))]
}

// stem returns a file name without its extension.
func stem(name string) string { return strings.TrimSuffix(name, filepath.Ext(name)) }

// listImages returns the image file names in dir/images, sorted. A missing
// folder is empty.
func listImages(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, dirImages))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && isImage(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// labelPath returns the label file of image name in dir.
func labelPath(dir, name string) string {
	return filepath.Join(dir, dirLabels, stem(name)+".txt")
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
