// Package model defines the model descriptor that travels with every model:
// in a sidecar file beside a local .onnx, in the manifest of a published
// model, and to a backend plugin's Load. Any program may import it.
package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Formats a backend may load.
const (
	FormatONNX   = "onnx"
	FormatEngine = "engine" // TensorRT serialized engine
	FormatRKNN   = "rknn"
)

// Output layouts.
const (
	// OutputYOLORaw is [B, 4+nc, A]: rows cx, cy, w, h in input pixels, then
	// per-class scores (already sigmoid; no objectness).
	OutputYOLORaw = "yolo-raw"
	// OutputYOLONMS is [B, N, 6]: rows x1, y1, x2, y2, score, class in input
	// pixels, NMS already applied, zero-padded.
	OutputYOLONMS = "yolo-nms"
	// OutputYOLORawNorm is yolo-raw with the box rows normalized to 0..1 of
	// the input size: the layout of INT8 RKNN exports, where one per-tensor
	// quantization scale must also fit the class scores.
	OutputYOLORawNorm = "yolo-raw-norm"
)

// Descriptor says what a model is and how to feed it. Zero fields are filled
// by the backend from the model itself (ONNX inputs/outputs and Ultralytics
// metadata) when it loads; Load returns the resolved descriptor.
type Descriptor struct {
	// Name identifies the model in the API (e.g. "yolo11n"); [A-Za-z0-9._-]+.
	Name string `yaml:"name" json:"name"`
	// Version is the model version (e.g. "2026-11-28" or "1"); [A-Za-z0-9._-]*.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// Format is onnx, engine or rknn.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// InputWidth and InputHeight are the network input size in pixels.
	InputWidth  int `yaml:"input_width,omitempty" json:"input_width,omitempty"`
	InputHeight int `yaml:"input_height,omitempty" json:"input_height,omitempty"`
	// Batch is the fixed batch size, or 0 for a dynamic batch dimension.
	Batch int `yaml:"batch,omitempty" json:"batch,omitempty"`
	// DynamicBatch is true when the batch dimension is dynamic.
	DynamicBatch bool `yaml:"dynamic_batch,omitempty" json:"dynamic_batch,omitempty"`
	// Layout is NCHW or NHWC (default NCHW).
	Layout string `yaml:"layout,omitempty" json:"layout,omitempty"`
	// DType is the input element type (float32; default float32).
	DType string `yaml:"dtype,omitempty" json:"dtype,omitempty"`
	// PixelFormat is the channel order the model expects (RGB).
	PixelFormat string `yaml:"pixel_format,omitempty" json:"pixel_format,omitempty"`
	// Output is yolo-raw or yolo-nms.
	Output string `yaml:"output,omitempty" json:"output,omitempty"`
	// Classes are the class names by class id.
	Classes []string `yaml:"classes,omitempty" json:"classes,omitempty"`
	// Artifacts are per-target builds (TensorRT engine per GPU compute
	// capability, RKNN per SoC), keyed by backend and device.
	Artifacts []Artifact `yaml:"artifacts,omitempty" json:"artifacts,omitempty"`
}

// Artifact is one per-target build of a model.
type Artifact struct {
	// Backend is the plugin that loads it (onnx, tensorrt, rknn).
	Backend string `yaml:"backend" json:"backend"`
	// Device qualifies the target: a CUDA compute capability ("8.9"), an SoC ("rk3588").
	Device string `yaml:"device,omitempty" json:"device,omitempty"`
	// Runtime is the runtime version it was built for (TensorRT 10.3, librknnrt 2.0).
	Runtime string `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	// Format is the artifact's format.
	Format string `yaml:"format" json:"format"`
	// File names the artifact in its container or store.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid model descriptor")

// ValidName reports whether s is a valid model name or version (non-empty,
// letters, digits, '.', '_', '-', at most 128 bytes, not "." or "..").
func ValidName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// NameFromFile is the model name a file gets when nothing else names it:
// its base name without extension, with characters other than letters,
// digits, '.', '_' and '-' replaced by '_'.
func NameFromFile(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, base), "._")
}

// Validate checks the fields that are set (a partial descriptor is valid).
func (d *Descriptor) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !ValidName(d.Name) {
		return bad("name %q: want letters, digits, '.', '_' or '-'", d.Name)
	}
	if d.Version != "" && !ValidName(d.Version) {
		return bad("version %q: want letters, digits, '.', '_' or '-'", d.Version)
	}
	switch d.Format {
	case "", FormatONNX, FormatEngine, FormatRKNN:
	default:
		return bad("format %q: want onnx, engine or rknn", d.Format)
	}
	if d.InputWidth < 0 || d.InputHeight < 0 || d.InputWidth > 8192 || d.InputHeight > 8192 {
		return bad("input size %dx%d out of range", d.InputWidth, d.InputHeight)
	}
	if d.InputWidth%32 != 0 || d.InputHeight%32 != 0 {
		return bad("input size %dx%d: YOLO needs multiples of 32", d.InputWidth, d.InputHeight)
	}
	if d.Batch < 0 || d.Batch > 256 {
		return bad("batch %d out of range 0..256", d.Batch)
	}
	switch strings.ToUpper(d.Layout) {
	case "", "NCHW", "NHWC":
	default:
		return bad("layout %q: want NCHW or NHWC", d.Layout)
	}
	switch d.DType {
	case "", "float32":
	default:
		return bad("dtype %q: only float32 inputs are supported", d.DType)
	}
	switch strings.ToUpper(d.PixelFormat) {
	case "", "RGB", "BGR":
	default:
		return bad("pixel_format %q: want RGB or BGR", d.PixelFormat)
	}
	switch d.Output {
	case "", OutputYOLORaw, OutputYOLONMS, OutputYOLORawNorm:
	default:
		return bad("output %q: want yolo-raw, yolo-nms or yolo-raw-norm", d.Output)
	}
	return nil
}

// ID returns "name:version" (or just the name when the version is empty).
func (d *Descriptor) ID() string {
	if d.Version == "" {
		return d.Name
	}
	return d.Name + ":" + d.Version
}

// ReadSidecar reads the optional descriptor beside a model file: for
// "x/yolo.onnx" it tries "x/yolo.yaml" then "x/yolo.onnx.yaml". It returns
// (nil, nil) when there is none.
func ReadSidecar(modelPath string) (*Descriptor, error) {
	base := strings.TrimSuffix(modelPath, filepath.Ext(modelPath))
	for _, p := range []string{base + ".yaml", modelPath + ".yaml"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read descriptor %s: %w", p, err)
		}
		var d Descriptor
		if err := yaml.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("parse descriptor %s: %w", p, err)
		}
		return &d, nil
	}
	return nil, nil
}
