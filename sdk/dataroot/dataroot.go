// Package dataroot defines the layout of the data root (DESIGN.md section 9),
// shared by the annotation ingest (which writes it) and the trainer (which
// reads and extends it): the folder names, the images/ and labels/ split
// inside each, and the image file extensions any of them may hold. It may be
// imported by the daemon and by any plugin.
package dataroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Folders under the data root. Each annotation folder holds Images and Labels.
const (
	// Seed holds annotations not yet validated.
	Seed = "data-seed"
	// Data holds validated annotations.
	Data = "data"
	// Processed holds the augmented images (1 original + 7 variants each).
	Processed = "data-processed"
	// Datasets holds the dataset splits, datasets/azaion-YYYY-MM-DD/{train,valid,test}.
	Datasets = "datasets"
	// Corrupted holds images whose labels failed validation, with the reason.
	Corrupted = "data-corrupted"
	// Deleted holds soft-deleted annotations.
	Deleted = "data_deleted"
)

// Sub-folders of an annotation folder.
const (
	// Images holds the image files.
	Images = "images"
	// Labels holds one YOLO label file (stem + ".txt") per image.
	Labels = "labels"
)

// ImageExts are the image file extensions (lower case, without the dot) an
// annotation folder may hold, in the order lookups try them.
var ImageExts = []string{"jpg", "jpeg", "png", "bmp", "webp"}

// IsImage reports whether a file name is an image of the data root: one of
// ImageExts (any case), and not hidden (temporary files start with a dot).
func IsImage(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))
	for _, e := range ImageExts {
		if ext == e {
			return true
		}
	}
	return false
}

// Stem returns a file name without its extension (the annotation's name).
func Stem(name string) string { return strings.TrimSuffix(name, filepath.Ext(name)) }

// LabelFile returns the label file name of an image file name.
func LabelFile(image string) string { return Stem(image) + ".txt" }

// ListImages returns the names of the image files (IsImage, regular files)
// in dir, sorted. A missing folder is empty.
func ListImages(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && IsImage(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
