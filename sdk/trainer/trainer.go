// Package trainer is the contract between the daemon and the trainer/augmenter
// plugin (azaion-plugin-trainer): the Go interface, the job parameters, the
// gRPC protocol (proto/) and its client and server shims, and the go-plugin
// wrapper. A job (validate, augment, dataset, train, export, gate) runs
// inside the plugin and streams progress events back; cancelling its context
// stops it. It also holds the parameters of every job type (publish runs in
// the daemon) and the files a training run's export leaves (export.json,
// gate.json).
//
// It is imported by the daemon and by the plugin; it holds no cgo.
package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// APIVersion is the version of this contract the plugin advertises.
const APIVersion = "trainer/v1"

// JobType names what a job does.
type JobType string

// The job types.
const (
	// JobValidate checks every label in data/ and moves invalid images to data-corrupted/.
	JobValidate JobType = "validate"
	// JobAugment writes the original and augmented variants of data/ images to data-processed/.
	JobAugment JobType = "augment"
	// JobDataset forms datasets/azaion-YYYY-MM-DD/ from data-processed/.
	JobDataset JobType = "dataset"
	// JobTrain trains a YOLO model on a dataset (the Python worker).
	JobTrain JobType = "train"
	// JobExport exports a training run's best.pt to deployable artifacts.
	JobExport JobType = "export"
	// JobGate evaluates a run's artifacts against its best.pt.
	JobGate JobType = "gate"
)

// Valid reports whether t is a known job type.
func (t JobType) Valid() bool {
	switch t {
	case JobValidate, JobAugment, JobDataset, JobTrain, JobExport, JobGate:
		return true
	}
	return false
}

// JobSpec is a job to run.
type JobSpec struct {
	// ID identifies the job (chosen by the daemon).
	ID string
	// Type says what the job does.
	Type JobType
	// DataRoot is the data root (data/, data-processed/, datasets/ ...).
	DataRoot string
	// StateDir is the daemon's state folder: training runs live in
	// StateDir/training/<run>/.
	StateDir string
	// LogPath is the job's log file, where the training worker's console
	// output goes (empty: none).
	LogPath string
	// Params are the JSON-encoded parameters of the job type
	// (ValidateParams, AugmentParams, DatasetParams, TrainParams,
	// ExportParams or GateParams); empty means defaults.
	Params json.RawMessage
}

// Event is one progress report of a running job.
type Event struct {
	// Progress is the fraction done, 0..1 (in watch mode, of the current pass).
	Progress float64 `json:"progress"`
	// Stage names the current step (e.g. "scan", "augment", "link").
	Stage string `json:"stage,omitempty"`
	// Message is a human-readable note.
	Message string `json:"message,omitempty"`
	// Metrics are named figures (images_done, images_total, images_per_s ...).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Time is when the event was made.
	Time time.Time `json:"time"`
}

// Info describes a trainer plugin.
type Info struct {
	// Name and Version of the plugin.
	Name, Version string
	// APIVersions are the contract versions it speaks (APIVersion).
	APIVersions []string
	// JobTypes are the job types it runs.
	JobTypes []JobType
}

// Trainer is what the trainer plugin implements.
type Trainer interface {
	// Info describes the plugin; the daemon also uses it as a health check.
	Info(ctx context.Context) (*Info, error)
	// StartJob runs a job to the end, calling emit with progress events (from
	// one goroutine at a time). It returns nil when the job succeeded,
	// context.Canceled when ctx was cancelled, or the job's error.
	StartJob(ctx context.Context, spec JobSpec, emit func(Event)) error
	// Cancel stops the running job with this id; ErrUnknownJob when none runs.
	Cancel(ctx context.Context, id string) error
}

// ErrUnknownJob is returned by Cancel for a job that is not running.
var ErrUnknownJob = errors.New("unknown job")

// ErrBadSpec marks a job spec or parameters that are invalid.
var ErrBadSpec = errors.New("bad job spec")

// ValidateParams configure label validation.
type ValidateParams struct {
	// AllowBackground accepts images without labels (background images).
	AllowBackground bool `json:"allow_background" yaml:"allow_background"`
	// Tolerance is how far (normalized) a box may stick out of the image.
	Tolerance float64 `json:"tolerance" yaml:"tolerance"`
}

// DefaultValidateParams returns the defaults: background allowed, tolerance 0.01.
func DefaultValidateParams() ValidateParams {
	return ValidateParams{AllowBackground: true, Tolerance: 0.01}
}

// Validate checks the parameters.
func (p ValidateParams) Validate() error {
	if p.Tolerance < 0 || p.Tolerance > 0.5 {
		return fmt.Errorf("%w: tolerance %g is out of range 0..0.5", ErrBadSpec, p.Tolerance)
	}
	return nil
}

// AugmentParams configure augmentation. Each transform is applied to a
// variant with its probability; its amount is the largest random change.
type AugmentParams struct {
	// Seed makes the output deterministic.
	Seed int64 `json:"seed" yaml:"seed"`
	// Workers is the number of parallel workers (0 = number of CPUs).
	Workers int `json:"workers" yaml:"workers"`
	// Variants is the number of augmented variants per image (default 7).
	Variants int `json:"variants" yaml:"variants"`
	// MinVisible is the fraction of a transformed box that must stay inside
	// the image; boxes with less are dropped.
	MinVisible float64 `json:"min_visible" yaml:"min_visible"`
	// JPEGQuality of the written variants (1..100).
	JPEGQuality int `json:"jpeg_quality" yaml:"jpeg_quality"`
	// Watch keeps the job running, picking up new images until cancelled.
	Watch bool `json:"watch" yaml:"-"`
	// WatchSeconds is the pause between scans in watch mode.
	WatchSeconds float64 `json:"watch_seconds" yaml:"watch_seconds"`
	// Checks are the label checks applied before augmenting.
	Checks ValidateParams `json:"checks" yaml:"-"`

	// FlipP is the probability of a horizontal flip.
	FlipP float64 `json:"flip_p" yaml:"flip_p"`
	// RotateP and RotateDeg: rotation about the centre by up to ±RotateDeg degrees.
	RotateP   float64 `json:"rotate_p" yaml:"rotate_p"`
	RotateDeg float64 `json:"rotate_deg" yaml:"rotate_deg"`
	// ScaleP, Scale and Translate: scale by 1±Scale and shift by up to ±Translate of the size.
	ScaleP    float64 `json:"scale_p" yaml:"scale_p"`
	Scale     float64 `json:"scale" yaml:"scale"`
	Translate float64 `json:"translate" yaml:"translate"`
	// PerspectiveP and Perspective: corners moved by up to Perspective of the size.
	PerspectiveP float64 `json:"perspective_p" yaml:"perspective_p"`
	Perspective  float64 `json:"perspective" yaml:"perspective"`
	// BrightnessP, Brightness and Contrast: pixel*(1±Contrast) + 255*(±Brightness).
	BrightnessP float64 `json:"brightness_p" yaml:"brightness_p"`
	Brightness  float64 `json:"brightness" yaml:"brightness"`
	Contrast    float64 `json:"contrast" yaml:"contrast"`
	// HSVP, Hue and Saturation: hue shifted by up to ±Hue degrees, saturation scaled by 1±Saturation.
	HSVP       float64 `json:"hsv_p" yaml:"hsv_p"`
	Hue        float64 `json:"hue" yaml:"hue"`
	Saturation float64 `json:"saturation" yaml:"saturation"`
	// BlurP and BlurMax: Gaussian blur with an odd kernel of 3..BlurMax pixels.
	BlurP   float64 `json:"blur_p" yaml:"blur_p"`
	BlurMax int     `json:"blur_max" yaml:"blur_max"`
	// NoiseP and NoiseStd: Gaussian noise with a standard deviation up to NoiseStd (0..255).
	NoiseP   float64 `json:"noise_p" yaml:"noise_p"`
	NoiseStd float64 `json:"noise_std" yaml:"noise_std"`
}

// DefaultAugmentParams returns the default augmentation.
func DefaultAugmentParams() AugmentParams {
	return AugmentParams{
		Seed: 1, Variants: 7, MinVisible: 0.3, JPEGQuality: 90, WatchSeconds: 10,
		Checks:  DefaultValidateParams(),
		FlipP:   0.5,
		RotateP: 0.5, RotateDeg: 15,
		ScaleP: 0.5, Scale: 0.2, Translate: 0.1,
		PerspectiveP: 0.3, Perspective: 0.05,
		BrightnessP: 0.5, Brightness: 0.15, Contrast: 0.2,
		HSVP: 0.5, Hue: 10, Saturation: 0.3,
		BlurP: 0.3, BlurMax: 5,
		NoiseP: 0.3, NoiseStd: 8,
	}
}

// Validate checks the parameters and names the first bad one.
func (p AugmentParams) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
	}
	switch {
	case p.Workers < 0 || p.Workers > 256:
		return bad("workers %d is out of range 0..256", p.Workers)
	case p.Variants < 0 || p.Variants > 64:
		return bad("variants %d is out of range 0..64", p.Variants)
	case p.MinVisible < 0 || p.MinVisible > 1:
		return bad("min_visible %g is out of range 0..1", p.MinVisible)
	case p.JPEGQuality < 1 || p.JPEGQuality > 100:
		return bad("jpeg_quality %d is out of range 1..100", p.JPEGQuality)
	case p.Watch && p.WatchSeconds <= 0:
		return bad("watch_seconds must be positive")
	case p.RotateDeg < 0 || p.RotateDeg > 180:
		return bad("rotate_deg %g is out of range 0..180", p.RotateDeg)
	case p.Scale < 0 || p.Scale >= 1:
		return bad("scale %g is out of range 0..1", p.Scale)
	case p.Translate < 0 || p.Translate > 0.5:
		return bad("translate %g is out of range 0..0.5", p.Translate)
	case p.Perspective < 0 || p.Perspective > 0.3:
		return bad("perspective %g is out of range 0..0.3", p.Perspective)
	case p.Brightness < 0 || p.Brightness > 1 || p.Contrast < 0 || p.Contrast >= 1:
		return bad("brightness %g / contrast %g are out of range", p.Brightness, p.Contrast)
	case p.Hue < 0 || p.Hue > 90 || p.Saturation < 0 || p.Saturation >= 1:
		return bad("hue %g / saturation %g are out of range", p.Hue, p.Saturation)
	case p.BlurMax < 3 || p.BlurMax > 31:
		return bad("blur_max %d is out of range 3..31", p.BlurMax)
	case p.NoiseStd < 0 || p.NoiseStd > 64:
		return bad("noise_std %g is out of range 0..64", p.NoiseStd)
	}
	for name, v := range map[string]float64{"flip_p": p.FlipP, "rotate_p": p.RotateP, "scale_p": p.ScaleP,
		"perspective_p": p.PerspectiveP, "brightness_p": p.BrightnessP, "hsv_p": p.HSVP, "blur_p": p.BlurP, "noise_p": p.NoiseP} {
		if v < 0 || v > 1 {
			return bad("%s %g is out of range 0..1", name, v)
		}
	}
	return p.Checks.Validate()
}

// DatasetParams configure dataset formation.
type DatasetParams struct {
	// Seed makes the split deterministic.
	Seed int64 `json:"seed" yaml:"seed"`
	// Train, Valid and Test are the split fractions (they must sum to 1).
	Train float64 `json:"train" yaml:"train"`
	Valid float64 `json:"valid" yaml:"valid"`
	Test  float64 `json:"test" yaml:"test"`
	// Name is the dataset folder under datasets/ (default azaion-YYYY-MM-DD, today in UTC).
	Name string `json:"name,omitempty" yaml:"-"`
}

// DefaultDatasetParams returns the defaults: 70/20/10, seed 1.
func DefaultDatasetParams() DatasetParams {
	return DatasetParams{Seed: 1, Train: 0.7, Valid: 0.2, Test: 0.1}
}

// Validate checks the parameters.
func (p DatasetParams) Validate() error {
	if p.Train < 0 || p.Valid < 0 || p.Test < 0 {
		return fmt.Errorf("%w: split fractions must not be negative", ErrBadSpec)
	}
	if s := p.Train + p.Valid + p.Test; s < 0.999 || s > 1.001 {
		return fmt.Errorf("%w: split fractions %g+%g+%g sum to %g, want 1", ErrBadSpec, p.Train, p.Valid, p.Test, s)
	}
	if p.Name != "" && (p.Name == "." || p.Name == ".." || containsAny(p.Name, "/\\\x00")) {
		return fmt.Errorf("%w: dataset name %q is not a plain folder name", ErrBadSpec, p.Name)
	}
	return nil
}

func containsAny(s, chars string) bool {
	for _, c := range s {
		for _, d := range chars {
			if c == d {
				return true
			}
		}
	}
	return false
}

// DecodeParams decodes raw JSON over def (so absent fields keep their
// defaults) and validates the result.
func DecodeParams[T interface{ Validate() error }](raw json.RawMessage, def T) (T, error) {
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &def); err != nil {
			return def, fmt.Errorf("%w: params: %v", ErrBadSpec, err)
		}
	}
	if err := def.Validate(); err != nil {
		return def, err
	}
	return def, nil
}
