package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/azaion/edge/sdk/model"
)

// Files in a run's export/ folder.
const (
	// ExportManifestFile lists the complete artifacts of an export; an
	// artifact file that it does not list is not complete.
	ExportManifestFile = "export.json"
	// GateReportFile and GateMarkdownFile are the accuracy gate's report.
	GateReportFile   = "gate.json"
	GateMarkdownFile = "gate.md"
)

// Precisions of artifacts.
const (
	PrecisionFP32 = "fp32"
	PrecisionFP16 = "fp16"
	PrecisionINT8 = "int8"
)

// Artifact is one exported file of a run.
type Artifact struct {
	// File is the artifact's name in export/.
	File string `json:"file"`
	// SHA256 and Size identify its bytes.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Precision is fp32, fp16 or int8.
	Precision string `json:"precision"`
	// Variant marks an extra build for the same target (the dynamic-batch
	// ONNX); a device is served the artifact without one.
	Variant string `json:"variant,omitempty"`
	// Descriptor is the artifact's model descriptor (also written beside it
	// as <stem>.yaml); Descriptor.Artifacts[0] names its backend and target.
	Descriptor model.Descriptor `json:"descriptor"`
	// SourceONNX and Calibration, for an RKNN artifact, are the ONNX it was
	// converted from and its calibration image list (the gate rebuilds it in
	// rknn-toolkit2's simulator from them).
	SourceONNX  string `json:"source_onnx,omitempty"`
	Calibration string `json:"calibration,omitempty"`
}

// Target returns the artifact's backend target (backend, device, runtime).
func (a Artifact) Target() model.Artifact {
	if len(a.Descriptor.Artifacts) > 0 {
		return a.Descriptor.Artifacts[0]
	}
	return model.Artifact{Backend: a.Descriptor.Format, Format: a.Descriptor.Format, File: a.File}
}

// ExportManifest is export/export.json: the artifacts of a run's export.
type ExportManifest struct {
	Run     string    `json:"run"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Imgsz   int       `json:"imgsz"`
	Weights string    `json:"weights"`
	Created time.Time `json:"created"`
	// Conf, IoU and MaxDet are the NMS settings baked into the artifacts
	// (the gate runs best.pt with the same).
	Conf   float64 `json:"conf"`
	IoU    float64 `json:"iou"`
	MaxDet int     `json:"max_det"`
	// Packages are the versions of the tools that built the artifacts.
	Packages  map[string]string `json:"packages,omitempty"`
	Artifacts []Artifact        `json:"artifacts"`
}

// ReadExportManifest reads a run's export/export.json.
func ReadExportManifest(runDir string) (*ExportManifest, error) {
	b, err := os.ReadFile(filepath.Join(runDir, DirExport, ExportManifestFile))
	if err != nil {
		return nil, fmt.Errorf("run %s has no complete export (run an export job): %w", filepath.Base(runDir), err)
	}
	var m ExportManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("run %s: %s: %w", filepath.Base(runDir), ExportManifestFile, err)
	}
	return &m, nil
}

// GateResult is the gate's verdict on one artifact.
type GateResult struct {
	File      string  `json:"file"`
	Backend   string  `json:"backend"`
	Precision string  `json:"precision"`
	Path      string  `json:"path"` // the inference path that fed the evaluation
	MAP50     float64 `json:"map50"`
	MAP5095   float64 `json:"map50_95"`
	// Drop is the mAP50-95 drop against best.pt in points (0..100); Limit
	// the largest allowed.
	Drop   float64 `json:"drop"`
	Limit  float64 `json:"limit"`
	Passed bool    `json:"passed"`
	// Classes are the per-class APs (class id -> ap50, ap50_95).
	Classes []GateClass `json:"classes"`
	// Error says why an artifact could not be evaluated (it fails).
	Error string `json:"error,omitempty"`
}

// GateClass is one class's accuracy.
type GateClass struct {
	Class  int     `json:"class"`
	Name   string  `json:"name"`
	Truth  int     `json:"truth"`
	AP50   float64 `json:"ap50"`
	AP5095 float64 `json:"ap50_95"`
}

// GateReport is export/gate.json.
type GateReport struct {
	Run    string    `json:"run"`
	Split  string    `json:"split"`
	Images int       `json:"images"`
	Time   time.Time `json:"time"`
	// Export is the SHA-256 of the export.json the gate evaluated: a later
	// export invalidates the report.
	Export    string       `json:"export"`
	Reference GateResult   `json:"reference"` // best.pt through Ultralytics
	Artifacts []GateResult `json:"artifacts"`
	Passed    bool         `json:"passed"`
}

// ReadGateReport reads a run's export/gate.json.
func ReadGateReport(runDir string) (*GateReport, error) {
	b, err := os.ReadFile(filepath.Join(runDir, DirExport, GateReportFile))
	if err != nil {
		return nil, fmt.Errorf("run %s has no gate report (run a gate job): %w", filepath.Base(runDir), err)
	}
	var r GateReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("run %s: %s: %w", filepath.Base(runDir), GateReportFile, err)
	}
	return &r, nil
}
