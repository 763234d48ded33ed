package trainer

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Folders under the state folder that training jobs use.
const (
	// DirTraining holds one folder per training run: training/<run>/ with
	// weights/best.pt, weights/last.pt, results.csv, args.yaml, data.yaml
	// and, once exported, export/ (artifacts, descriptors, export.json,
	// gate.json, gate.md).
	DirTraining = "training"
	// DirExport is the folder of a run's exported artifacts.
	DirExport = "export"
)

// Export formats.
const (
	FormatONNX   = "onnx"   // ONNX with NMS in the graph, fixed batch (+ a dynamic-batch variant)
	FormatRKNN   = "rknn"   // RKNN for a Rockchip NPU, INT8
	FormatEngine = "engine" // TensorRT FP16 engine for the GPU it is built on
)

// runName is what a run name may hold (it is also a model version).
var runName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidRunName reports whether s can name a training run.
func ValidRunName(s string) bool { return runName.MatchString(s) && !strings.Contains(s, "..") }

// TrainParams configure a training run (Ultralytics YOLO).
type TrainParams struct {
	// Dataset is the dataset folder under datasets/ (default: the newest azaion-*).
	Dataset string `json:"dataset,omitempty" yaml:"dataset,omitempty"`
	// Model is a YOLO model yaml to train from scratch (yolo11m.yaml) or the
	// path of a .pt to fine-tune.
	Model string `json:"model" yaml:"model"`
	// Imgsz is the training image size (default 1280, as the seed).
	Imgsz int `json:"imgsz" yaml:"imgsz"`
	// Epochs is the number of epochs.
	Epochs int `json:"epochs" yaml:"epochs"`
	// Batch is the batch size; 0 picks it from the device's memory (16 on CPU).
	Batch int `json:"batch" yaml:"batch"`
	// Device is "" (a GPU when present, else cpu), "cpu", or CUDA ids ("0", "0,1").
	Device string `json:"device,omitempty" yaml:"device"`
	// Patience stops training after this many epochs without improvement.
	Patience int `json:"patience" yaml:"patience"`
	// Workers is the number of data loader processes.
	Workers int `json:"workers" yaml:"workers"`
	// Seed makes training repeatable.
	Seed int `json:"seed" yaml:"seed"`
	// Name is the run's folder under training/ (the daemon picks a new one
	// when empty).
	Name string `json:"name,omitempty" yaml:"-"`
	// Resume continues the run of this name from its last.pt.
	Resume string `json:"resume,omitempty" yaml:"-"`
	// Args are further Ultralytics training arguments (lr0, optimizer,
	// mosaic ...), passed as they are; those the parameters above or the
	// plugin set (data, project, name, resume, plots ...) are refused.
	Args map[string]any `json:"args,omitempty" yaml:"args,omitempty"`
}

// reservedTrainArgs are Ultralytics arguments the plugin owns.
var reservedTrainArgs = []string{"data", "model", "imgsz", "epochs", "batch", "device", "patience", "workers", "seed",
	"project", "name", "exist_ok", "resume", "plots", "save_dir", "mode", "task", "source", "cfg", "tracker"}

// DefaultTrainParams returns the defaults: yolo11m.yaml at 1280 px for 100
// epochs, batch and device automatic, patience 50, 8 workers.
func DefaultTrainParams() TrainParams {
	return TrainParams{Model: "yolo11m.yaml", Imgsz: 1280, Epochs: 100, Patience: 50, Workers: 8}
}

// Validate checks the parameters and names the first bad one.
func (p TrainParams) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
	}
	if p.Resume != "" {
		if !ValidRunName(p.Resume) {
			return bad("resume %q is not a run name", p.Resume)
		}
		return nil
	}
	switch {
	case p.Dataset != "" && (p.Dataset != filepath.Base(p.Dataset) || strings.HasPrefix(p.Dataset, ".")):
		return bad("dataset %q: want a folder name under datasets/", p.Dataset)
	case p.Model == "":
		return bad("model is empty: want a YOLO yaml (yolo11m.yaml) or a .pt")
	case !strings.HasSuffix(p.Model, ".yaml") && !strings.HasSuffix(p.Model, ".yml") && !strings.HasSuffix(p.Model, ".pt"):
		return bad("model %q: want a YOLO yaml (yolo11m.yaml) or a .pt file", p.Model)
	case strings.HasSuffix(p.Model, ".pt") && !filepath.IsAbs(p.Model):
		return bad("model %q: a .pt to fine-tune must be an absolute path", p.Model)
	case p.Imgsz < 32 || p.Imgsz > 8192 || p.Imgsz%32 != 0:
		return bad("imgsz %d: want a multiple of 32 in 32..8192", p.Imgsz)
	case p.Epochs < 1 || p.Epochs > 10000:
		return bad("epochs %d: want 1..10000", p.Epochs)
	case p.Batch < 0 || p.Batch > 1024:
		return bad("batch %d: want 0 (automatic) or 1..1024", p.Batch)
	case p.Patience < 0:
		return bad("patience %d: want >= 0", p.Patience)
	case p.Workers < 0 || p.Workers > 64:
		return bad("workers %d: want 0..64", p.Workers)
	case p.Name != "" && !ValidRunName(p.Name):
		return bad("name %q: want letters, digits, '.', '_' or '-'", p.Name)
	case !validDevice(p.Device):
		return bad("device %q: want cpu, a CUDA device id (0) or ids (0,1), or empty for automatic", p.Device)
	}
	for k := range p.Args {
		if slices.Contains(reservedTrainArgs, k) {
			return bad("args.%s: set by the job itself (use the job parameter)", k)
		}
	}
	return nil
}

var deviceRE = regexp.MustCompile(`^(cpu|[0-9]+(,[0-9]+)*)$`)

func validDevice(d string) bool { return d == "" || deviceRE.MatchString(d) }

// ExportParams configure an export of a run's best.pt.
type ExportParams struct {
	// Run is the training run to export (required).
	Run string `json:"run" yaml:"-"`
	// Formats are onnx, rknn and engine (default onnx).
	Formats []string `json:"formats" yaml:"formats"`
	// Name is the model name in the artifacts' descriptors (default azaion).
	Name string `json:"name" yaml:"name"`
	// Version is the model version in the descriptors (default: the run name).
	Version string `json:"version,omitempty" yaml:"-"`
	// Imgsz is the export size (default: the run's training size).
	Imgsz int `json:"imgsz,omitempty" yaml:"imgsz,omitempty"`
	// Batch is the fixed batch of the ONNX and TensorRT artifacts (default 4).
	Batch int `json:"batch" yaml:"batch"`
	// Dynamic also exports a dynamic-batch ONNX variant (default true).
	Dynamic bool `json:"dynamic" yaml:"dynamic"`
	// Conf, IoU and MaxDet configure the NMS in the graph: the lowest score
	// an artifact can report (default 0.01), the overlap threshold (0.7) and
	// the rows per image (300).
	Conf   float64 `json:"conf" yaml:"conf"`
	IoU    float64 `json:"iou" yaml:"iou"`
	MaxDet int     `json:"max_det" yaml:"max_det"`
	// RKNNPlatform is the Rockchip SoC of the RKNN artifact (default rk3588).
	RKNNPlatform string `json:"rknn_platform" yaml:"rknn_platform"`
	// Calibration is how many train-split images calibrate INT8 (default 100).
	Calibration int `json:"calibration" yaml:"calibration"`
}

// DefaultExportParams returns the defaults.
func DefaultExportParams() ExportParams {
	return ExportParams{Formats: []string{FormatONNX}, Name: "azaion", Batch: 4, Dynamic: true, Conf: 0.01, IoU: 0.7,
		MaxDet: 300, RKNNPlatform: "rk3588", Calibration: 100}
}

var rknnPlatforms = []string{"rk3588", "rk3576", "rk3566", "rk3568", "rk3562"}

// Validate checks the parameters.
func (p ExportParams) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
	}
	switch {
	case !ValidRunName(p.Run):
		return bad("run %q: want the name of a training run", p.Run)
	case len(p.Formats) == 0:
		return bad("formats is empty: want onnx, rknn and/or engine")
	case !runName.MatchString(p.Name):
		return bad("name %q: want letters, digits, '.', '_' or '-'", p.Name)
	case p.Version != "" && !ValidRunName(p.Version):
		return bad("version %q: want letters, digits, '.', '_' or '-'", p.Version)
	case p.Imgsz != 0 && (p.Imgsz < 32 || p.Imgsz > 8192 || p.Imgsz%32 != 0):
		return bad("imgsz %d: want a multiple of 32", p.Imgsz)
	case p.Batch < 1 || p.Batch > 64:
		return bad("batch %d: want 1..64", p.Batch)
	case p.Conf <= 0 || p.Conf >= 1 || p.IoU <= 0 || p.IoU >= 1:
		return bad("conf %g / iou %g: want 0 < x < 1", p.Conf, p.IoU)
	case p.MaxDet < 1 || p.MaxDet > 10000:
		return bad("max_det %d: want 1..10000", p.MaxDet)
	case !slices.Contains(rknnPlatforms, p.RKNNPlatform):
		return bad("rknn_platform %q: want one of %s", p.RKNNPlatform, strings.Join(rknnPlatforms, ", "))
	case p.Calibration < 1 || p.Calibration > 100000:
		return bad("calibration %d: want 1..100000 images", p.Calibration)
	}
	seen := map[string]bool{}
	for _, f := range p.Formats {
		switch f {
		case FormatONNX, FormatRKNN, FormatEngine:
		default:
			return bad("format %q: want onnx, rknn or engine", f)
		}
		if seen[f] {
			return bad("format %q listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

// GateParams configure the accuracy gate of a run's exported artifacts.
type GateParams struct {
	// Run is the training run whose export/ is evaluated (required).
	Run string `json:"run" yaml:"-"`
	// MaxDropFloat is the largest mAP50-95 drop (points, 0..100) allowed for
	// float artifacts (FP32, FP16) against best.pt (default 1.0).
	MaxDropFloat float64 `json:"max_drop_float" yaml:"max_drop_float"`
	// MaxDropInt8 is the same for INT8 artifacts (default 3.0).
	MaxDropInt8 float64 `json:"max_drop_int8" yaml:"max_drop_int8"`
	// Split is the dataset split evaluated: test, or valid when test is empty (default test).
	Split string `json:"split" yaml:"split"`
	// Device runs best.pt on this device (default automatic).
	Device string `json:"device,omitempty" yaml:"device"`
}

// DefaultGateParams returns the defaults: 1.0 point for float artifacts,
// 3.0 for INT8, on the test split.
func DefaultGateParams() GateParams {
	return GateParams{MaxDropFloat: 1.0, MaxDropInt8: 3.0, Split: "test"}
}

// Validate checks the parameters.
func (p GateParams) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
	}
	switch {
	case !ValidRunName(p.Run):
		return bad("run %q: want the name of a training run", p.Run)
	case p.MaxDropFloat < 0 || p.MaxDropFloat > 100 || p.MaxDropInt8 < 0 || p.MaxDropInt8 > 100:
		return bad("max_drop_float %g / max_drop_int8 %g: want 0..100 points", p.MaxDropFloat, p.MaxDropInt8)
	case p.Split != "test" && p.Split != "valid":
		return bad("split %q: want test or valid", p.Split)
	case !validDevice(p.Device):
		return bad("device %q: want cpu or a CUDA device id", p.Device)
	}
	return nil
}

// JobPublish is the publish job type. It runs in the daemon, not in the
// trainer plugin (it needs the daemon's API and CDN credentials); its
// parameters live here with the other training jobs'.
const JobPublish JobType = "publish"

// PublishParams configure the publishing of a run's gated artifacts as one
// model version.
type PublishParams struct {
	// Run is the training run whose export/ is published (required).
	Run string `json:"run" yaml:"-"`
	// Override publishes although the gate failed (or did not run): the
	// reason is required, logged and stored with the job.
	Override string `json:"override,omitempty" yaml:"-"`
}

// DefaultPublishParams returns the defaults.
func DefaultPublishParams() PublishParams { return PublishParams{} }

// Validate checks the parameters.
func (p PublishParams) Validate() error {
	if !ValidRunName(p.Run) {
		return fmt.Errorf("%w: run %q: want the name of a training run", ErrBadSpec, p.Run)
	}
	if len(p.Override) > 1000 {
		return fmt.Errorf("%w: override: the reason is longer than 1000 characters", ErrBadSpec)
	}
	return nil
}
