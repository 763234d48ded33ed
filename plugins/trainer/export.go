package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/model"
	sdk "github.com/azaion/edge/sdk/trainer"
)

// exportSpec is what the worker's export command reads.
type exportSpec struct {
	Weights             string   `json:"weights"`
	Data                string   `json:"data"`
	OutDir              string   `json:"out_dir"`
	Name                string   `json:"name"`
	Formats             []string `json:"formats"`
	Imgsz               int      `json:"imgsz"`
	Batch               int      `json:"batch"`
	Dynamic             bool     `json:"dynamic"`
	Conf                float64  `json:"conf"`
	IoU                 float64  `json:"iou"`
	MaxDet              int      `json:"max_det"`
	RKNNPlatform        string   `json:"rknn_platform"`
	CalibrationFraction float64  `json:"calibration_fraction"`
}

// workerArtifact is one artifact in the worker's export result.
type workerArtifact struct {
	File         string `json:"file"`
	Format       string `json:"format"`
	Backend      string `json:"backend"`
	Device       string `json:"device"`
	Runtime      string `json:"runtime"`
	Precision    string `json:"precision"`
	Batch        int    `json:"batch"`
	DynamicBatch bool   `json:"dynamic_batch"`
	Output       string `json:"output"`
	SourceONNX   string `json:"source_onnx"`
	Calibration  string `json:"calibration"`
}

// runArgs reads the training size from a run's args.yaml.
func runArgs(dir string) (imgsz int, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "args.yaml"))
	if err != nil {
		return 0, err
	}
	var a struct {
		Imgsz int `yaml:"imgsz"`
	}
	if err := yaml.Unmarshal(b, &a); err != nil {
		return 0, fmt.Errorf("args.yaml: %w", err)
	}
	return a.Imgsz, nil
}

// exportJob exports a run's best.pt. Everything is written to a hidden
// folder beside export/ and swapped in when every format succeeded, with
// export.json (the list of complete artifacts) written last, so a failed or
// cancelled export leaves the previous export as it was.
func (s *Service) exportJob(ctx context.Context, spec sdk.JobSpec, p sdk.ExportParams, em *emitter, log hclog.Logger) error {
	dir := runDir(spec.StateDir, p.Run)
	best := filepath.Join(dir, "weights", "best.pt")
	if _, err := os.Stat(best); err != nil {
		return fmt.Errorf("%w: run %s has no best.pt (train it first): %v", sdk.ErrBadSpec, p.Run, err)
	}
	imgsz := p.Imgsz
	if imgsz == 0 {
		var err error
		if imgsz, err = runArgs(dir); err != nil || imgsz == 0 {
			return fmt.Errorf("run %s: training size unknown (%v); set imgsz", p.Run, err)
		}
	}
	for _, f := range p.Formats {
		if f == sdk.FormatEngine {
			if err := s.checkCUDA(ctx, spec); err != nil {
				return err
			}
		}
	}
	version := p.Version
	if version == "" {
		version = p.Run
	}
	calFrac := 1.0
	if ds, err := datasetOfRun(dir); err == nil {
		if n, _ := listImages(filepath.Join(ds, "train")); len(n) > 0 {
			calFrac = min(1, float64(p.Calibration)/float64(len(n)))
		}
	}
	tmp := filepath.Join(dir, ".export-"+spec.ID)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ws := exportSpec{Weights: best, Data: filepath.Join(dir, "data.yaml"), OutDir: tmp, Name: p.Name, Formats: p.Formats,
		Imgsz: imgsz, Batch: p.Batch, Dynamic: p.Dynamic, Conf: p.Conf, IoU: p.IoU, MaxDet: p.MaxDet,
		RKNNPlatform: p.RKNNPlatform, CalibrationFraction: calFrac}
	em.emit(0, "export", fmt.Sprintf("run %s: %s at %d px", p.Run, strings.Join(p.Formats, ", "), imgsz), nil, true)
	res, err := s.workerFor(spec.StateDir).run(ctx, "export", ws, s.jobDir(spec), spec.LogPath, func(ev workerEvent) {
		if ev.Event == "stage" {
			em.emit(ev.Progress, "export", ev.Stage, nil, true)
		}
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("export %s: %w", p.Run, err)
	}
	var out struct {
		Artifacts []workerArtifact `json:"artifacts"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return fmt.Errorf("export %s: worker result: %w", p.Run, err)
	}
	man := sdk.ExportManifest{Run: p.Run, Name: p.Name, Version: version, Imgsz: imgsz, Weights: "weights/best.pt",
		Created: time.Now().UTC(), Conf: p.Conf, IoU: p.IoU, MaxDet: p.MaxDet, Packages: s.packages(ctx, spec)}
	for _, a := range out.Artifacts {
		art, err := describe(tmp, a, p.Name, version, imgsz)
		if err != nil {
			return fmt.Errorf("export %s: %s: %w", p.Run, a.File, err)
		}
		man.Artifacts = append(man.Artifacts, art)
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(tmp, sdk.ExportManifestFile), b, 0o644); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := filepath.Join(dir, sdk.DirExport)
	old := filepath.Join(dir, ".export-old-"+spec.ID)
	if err := os.Rename(final, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Rename(old, final)
		return err
	}
	_ = atomicfile.SyncDir(dir)
	os.RemoveAll(old)
	metrics := map[string]float64{"artifacts": float64(len(man.Artifacts))}
	var names []string
	for _, a := range man.Artifacts {
		names = append(names, a.File)
	}
	log.Info("exported", "run", p.Run, "artifacts", names)
	em.emit(1, "done", fmt.Sprintf("run %s: %s", p.Run, strings.Join(names, ", ")), metrics, true)
	return nil
}

// describe checks an exported file, hashes it, and writes its descriptor
// beside it (<stem>.yaml, which the daemon's models folder reads).
func describe(dir string, a workerArtifact, name, version string, imgsz int) (sdk.Artifact, error) {
	path := filepath.Join(dir, a.File)
	f, err := os.Open(path)
	if err != nil {
		return sdk.Artifact{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return sdk.Artifact{}, err
	}
	if n == 0 {
		return sdk.Artifact{}, errors.New("the exported file is empty")
	}
	d := model.Descriptor{Name: name, Version: version, Format: a.Format, InputWidth: imgsz, InputHeight: imgsz,
		Batch: a.Batch, DynamicBatch: a.DynamicBatch, Layout: "NCHW", DType: "float32", PixelFormat: "RGB",
		Output: a.Output, Classes: classes.Names(),
		Artifacts: []model.Artifact{{Backend: a.Backend, Device: a.Device, Runtime: a.Runtime, Format: a.Format, File: a.File}}}
	if a.Format == model.FormatRKNN {
		d.Layout = "NHWC" // rknn_inputs take uint8 HWC
	}
	if err := d.Validate(); err != nil {
		return sdk.Artifact{}, err
	}
	y, err := yaml.Marshal(d)
	if err != nil {
		return sdk.Artifact{}, err
	}
	if err := atomicfile.Write(filepath.Join(dir, strings.TrimSuffix(a.File, filepath.Ext(a.File))+".yaml"), y, 0o644); err != nil {
		return sdk.Artifact{}, err
	}
	art := sdk.Artifact{File: a.File, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Precision: a.Precision, Descriptor: d,
		SourceONNX: a.SourceONNX, Calibration: a.Calibration}
	if a.DynamicBatch {
		art.Variant = "dynamic-batch"
	}
	return art, nil
}

// datasetOfRun returns the dataset folder a run trained on (from its data.yaml).
func datasetOfRun(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "data.yaml"))
	if err != nil {
		return "", err
	}
	var y dataYAML
	if err := yaml.Unmarshal(b, &y); err != nil {
		return "", err
	}
	if y.Path == "" {
		return "", errors.New("data.yaml has no path")
	}
	return y.Path, nil
}

// probeResult is the worker's probe output.
type probeResult struct {
	Python   string            `json:"python"`
	Packages map[string]string `json:"packages"`
	CUDA     bool              `json:"cuda"`
	GPUs     []struct {
		Name       string `json:"name"`
		Memory     int64  `json:"memory"`
		Capability string `json:"capability"`
	} `json:"gpus"`
}

// probe runs the worker's probe command.
func (s *Service) probe(ctx context.Context, spec sdk.JobSpec) (*probeResult, error) {
	res, err := s.workerFor(spec.StateDir).run(ctx, "probe", struct{}{}, s.jobDir(spec), spec.LogPath, nil)
	if err != nil {
		return nil, err
	}
	var p probeResult
	if err := json.Unmarshal(res, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// packages returns the worker's package versions (for the export manifest).
func (s *Service) packages(ctx context.Context, spec sdk.JobSpec) map[string]string {
	p, err := s.probe(ctx, spec)
	if err != nil {
		return nil
	}
	return p.Packages
}

// checkCUDA refuses a TensorRT export on a machine without a CUDA GPU and
// TensorRT, with one message, before any work.
func (s *Service) checkCUDA(ctx context.Context, spec sdk.JobSpec) error {
	p, err := s.probe(ctx, spec)
	if err != nil {
		return err
	}
	if !p.CUDA || len(p.GPUs) == 0 {
		return fmt.Errorf("%w: format engine: TensorRT engines are built on the GPU that runs them, and this machine has no CUDA GPU", sdk.ErrBadSpec)
	}
	if _, ok := p.Packages["tensorrt"]; !ok {
		return fmt.Errorf("%w: format engine: TensorRT is not installed in the training worker's environment", sdk.ErrBadSpec)
	}
	return nil
}
