package trainer

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig for .jpg
	_ "image/png"  // DecodeConfig for .png
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yololabel"
)

// checkLabels returns the boxes of an image's label file, or a reason why
// the labels are invalid. No file or an empty one is a background image.
func checkLabels(path string, p sdk.ValidateParams) ([]yololabel.Box, string) {
	boxes, err := yololabel.ReadFile(path)
	if err != nil {
		var le *yololabel.LineError
		if errors.As(err, &le) {
			return nil, "label " + le.Error()
		}
		return nil, "label file: " + err.Error()
	}
	if len(boxes) == 0 && !p.AllowBackground {
		return nil, "no labels (background images are not allowed)"
	}
	o := yololabel.CheckOptions{ClassOK: classes.Used, Tolerance: p.Tolerance}
	for i, b := range boxes {
		if r := yololabel.Check(b, o); r != "" {
			return nil, fmt.Sprintf("label line %d: %s", i+1, r)
		}
	}
	return boxes, ""
}

// checkImageHeader reports why an image file is unreadable, or "" when its
// header decodes (JPEG and PNG in Go; other formats are left to OpenCV).
func checkImageHeader(path string) string {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".jpg" && ext != ".jpeg" && ext != ".png" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return "image: " + err.Error()
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return "image cannot be decoded: " + err.Error()
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return "image has no pixels"
	}
	return ""
}

// moveCorrupted moves image name (and its label file) from dir to
// root/data-corrupted/, writing the reason to data-corrupted/reasons/<stem>.txt.
func moveCorrupted(root, dir, name, reason string) error {
	cd := filepath.Join(root, dataroot.Corrupted)
	if err := mkdirs(filepath.Join(cd, dataroot.Images), filepath.Join(cd, dataroot.Labels), filepath.Join(cd, dirReasons), filepath.Join(cd, dirTmp)); err != nil {
		return fmt.Errorf("move %s to %s: %w", name, dataroot.Corrupted, err)
	}
	msg := fmt.Sprintf("%s\nimage: %s\ntime: %s\n", reason, filepath.Join(dir, dataroot.Images, name), time.Now().UTC().Format(time.RFC3339))
	if err := writeAtomic(filepath.Join(cd, dirTmp), filepath.Join(cd, dirReasons, dataroot.Stem(name)+".txt"), []byte(msg)); err != nil {
		return err
	}
	lp := labelPath(dir, name)
	if _, err := os.Stat(lp); err == nil {
		if err := os.Rename(lp, labelPath(cd, name)); err != nil {
			return fmt.Errorf("move label of %s: %w", name, err)
		}
	}
	if err := os.Rename(filepath.Join(dir, dataroot.Images, name), filepath.Join(cd, dataroot.Images, name)); err != nil {
		return fmt.Errorf("move image %s: %w", name, err)
	}
	return nil
}

// validateJob checks every image of root/data and moves the invalid ones.
func validateJob(ctx context.Context, root string, p sdk.ValidateParams, em *emitter) error {
	dir := filepath.Join(root, dataroot.Data)
	names, err := listImages(dir)
	if err != nil {
		return err
	}
	em.emit(0, "validate", fmt.Sprintf("%d images", len(names)), nil, true)
	bad := 0
	start := time.Now()
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, reason := checkLabels(labelPath(dir, name), p)
		if reason == "" {
			reason = checkImageHeader(filepath.Join(dir, dataroot.Images, name))
		}
		if reason != "" {
			bad++
			if err := moveCorrupted(root, dir, name, reason); err != nil {
				return err
			}
		}
		em.emit(float64(i+1)/float64(len(names)), "validate", "", rateMetrics(i+1, len(names), start, map[string]float64{"corrupted": float64(bad)}), i+1 == len(names))
	}
	em.emit(1, "done", fmt.Sprintf("%d images checked, %d moved to %s", len(names), bad, dataroot.Corrupted),
		map[string]float64{"images_total": float64(len(names)), "corrupted": float64(bad)}, true)
	return nil
}
