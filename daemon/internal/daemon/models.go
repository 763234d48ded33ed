package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/model"
)

// scanModels registers every .onnx file in the models folder (with its
// optional sidecar descriptor) and forgets local models whose file is gone.
// A missing folder is not an error: the API says how to add models.
func (d *Daemon) scanModels() error {
	dir := d.cfg.Paths.Models
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		d.log.Warn("models folder does not exist", "dir", dir)
		entries = nil
	} else if err != nil {
		return fmt.Errorf("models folder: %w", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".onnx") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		src, err := localSource(path)
		if err != nil {
			d.log.Error("skipping model", "file", path, "error", err)
			continue
		}
		name := src.Descriptor.Name
		if seen[name] {
			d.log.Error("skipping model: another file has the same name", "file", path, "model", name)
			continue
		}
		seen[name] = true
		names = append(names, name)
		if d.localModels[name] {
			continue // already registered; a changed file is picked up at its next load
		}
		if err := d.sched.Add(src); err != nil {
			d.log.Error("skipping model", "file", path, "error", err)
			continue
		}
		d.localModels[name] = true
	}
	for name := range d.localModels {
		if !seen[name] {
			d.log.Info("model file removed, unloading", "model", name)
			_ = d.sched.Remove(context.Background(), name)
			delete(d.localModels, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		d.log.Warn("no models in the models folder: copy a YOLO .onnx file there and send SIGHUP, or run `azaion models import FILE`", "dir", dir)
	} else {
		d.log.Info("local models", "dir", dir, "models", names)
	}
	return nil
}

// localSource describes a plain .onnx file: its sidecar descriptor when
// there is one, else a name from the file name; the backend fills the rest
// from the model itself.
func localSource(path string) (sched.Source, error) {
	desc, err := model.ReadSidecar(path)
	if err != nil {
		return sched.Source{}, err
	}
	if desc == nil {
		desc = &model.Descriptor{}
	}
	if desc.Name == "" {
		desc.Name = model.NameFromFile(path)
	}
	if desc.Format == "" {
		desc.Format = model.FormatONNX
	}
	if err := desc.Validate(); err != nil {
		return sched.Source{}, err
	}
	return sched.Source{
		Descriptor: *desc,
		Backend:    "onnx",
		Origin:     "file:" + path,
		Open:       func(context.Context) ([]byte, error) { return os.ReadFile(path) },
	}, nil
}
