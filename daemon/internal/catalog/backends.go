package catalog

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// Backend plugin names (the binary is azaion-plugin-<name>).
const (
	BackendONNX     = "onnx"
	BackendTensorRT = "tensorrt"
	BackendRKNN     = "rknn"
)

// backends lists every backend with the model formats it loads and the file
// extensions of local model files in those formats, most specialised first:
// when several artifacts of a model fit, the earlier backend wins (a
// TensorRT engine built for this GPU beats the portable ONNX file).
var backends = []struct {
	name    string
	format  string
	exts    []string
	devices []string // device kinds whose Compute an artifact's Device must match
}{
	{BackendTensorRT, model.FormatEngine, []string{".engine", ".plan"}, []string{backend.DeviceCUDA}},
	{BackendRKNN, model.FormatRKNN, []string{".rknn"}, []string{backend.DeviceNPU}},
	{BackendONNX, model.FormatONNX, []string{".onnx"}, []string{backend.DeviceCUDA, backend.DeviceCPU}},
}

// ErrNoArtifact: no artifact of a model fits the backends this machine runs.
var ErrNoArtifact = errors.New("no artifact of the model fits this machine")

// BackendFor returns the backend that loads a model format ("" = onnx).
func BackendFor(format string) (string, error) {
	if format == "" {
		format = model.FormatONNX
	}
	for _, b := range backends {
		if b.format == format {
			return b.name, nil
		}
	}
	return "", fmt.Errorf("%w: format %q: want onnx, engine or rknn", model.ErrInvalid, format)
}

// FormatForFile returns the model format of a local model file by its
// extension, and false for files that are not models.
func FormatForFile(name string) (string, bool) {
	ext := strings.ToLower(filepath.Ext(name))
	for _, b := range backends {
		if slices.Contains(b.exts, ext) {
			return b.format, true
		}
	}
	return "", false
}

// Target is a backend this daemon runs and what it reported about itself
// (Devices and Runtime stay empty until the plugin has started).
type Target struct {
	// Backend is the backend's name (onnx, tensorrt, rknn).
	Backend string
	// Devices are the backend's devices.
	Devices []backend.Device
	// Runtime is the version of the backend's runtime (TensorRT, librknnrt).
	Runtime string
}

// Select returns the artifact of a model that the given targets serve best,
// with the backend that serves it. An artifact fits a target when its
// backend (or its format's backend) is the target's, its Device (when set)
// is the compute capability or SoC of one of the target's devices of the
// right kind, and its Runtime (when set, and the target reports one) is the
// target's. Among fitting artifacts the most specialised backend wins, then
// the artifact listed first. Artifacts built for a device never fit a target
// whose devices are not known yet: a TensorRT engine or an RKNN model only
// loads on the hardware it was built for.
func Select(arts []model.Artifact, targets []Target) (model.Artifact, string, error) {
	for _, b := range backends {
		t := findTarget(targets, b.name)
		if t == nil {
			continue
		}
		for _, a := range arts {
			name := a.Backend
			if name == "" {
				var err error
				if name, err = BackendFor(a.Format); err != nil {
					continue
				}
			}
			if name != b.name || (a.Format != "" && a.Format != b.format) {
				continue
			}
			if a.Device != "" && !hasDevice(t.Devices, b.devices, a.Device) {
				continue
			}
			if a.Runtime != "" && t.Runtime != "" && a.Runtime != t.Runtime {
				continue
			}
			return a, b.name, nil
		}
	}
	var have, offered []string
	for _, t := range targets {
		have = append(have, describeTarget(t))
	}
	for _, a := range arts {
		offered = append(offered, describeArtifact(a))
	}
	return model.Artifact{}, "", fmt.Errorf("%w: artifacts %s; backends here: %s", ErrNoArtifact,
		strings.Join(offered, ", "), strings.Join(have, ", "))
}

func findTarget(ts []Target, name string) *Target {
	for i := range ts {
		if ts[i].Backend == name {
			return &ts[i]
		}
	}
	return nil
}

func hasDevice(devs []backend.Device, kinds []string, compute string) bool {
	for _, d := range devs {
		if slices.Contains(kinds, d.Kind) && strings.EqualFold(d.Compute, compute) {
			return true
		}
	}
	return false
}

func describeTarget(t Target) string {
	var devs []string
	for _, d := range t.Devices {
		s := d.Kind
		if d.Compute != "" {
			s += " " + d.Compute
		}
		devs = append(devs, s)
	}
	s := t.Backend
	if len(devs) > 0 {
		s += " (" + strings.Join(devs, ", ") + ")"
	}
	if t.Runtime != "" {
		s += " runtime " + t.Runtime
	}
	return s
}

func describeArtifact(a model.Artifact) string {
	s := a.Format
	if a.Backend != "" {
		s += " for " + a.Backend
	}
	if a.Device != "" {
		s += " on " + a.Device
	}
	if a.Runtime != "" {
		s += " runtime " + a.Runtime
	}
	return s
}
