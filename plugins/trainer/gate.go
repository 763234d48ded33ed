package trainer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // image sizes of the evaluated images
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/plugins/onnx"
	"github.com/azaion/edge/sdk/accuracy"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/pluginconfig"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yolo"
	"github.com/azaion/edge/sdk/yololabel"
)

// predictSpec is what the worker's predict command reads.
type predictSpec struct {
	Kind         string   `json:"kind"` // ultralytics (.pt, .engine) or rknn (simulator)
	Weights      string   `json:"weights,omitempty"`
	SourceONNX   string   `json:"source_onnx,omitempty"`
	Calibration  string   `json:"calibration,omitempty"`
	RKNNPlatform string   `json:"rknn_platform,omitempty"`
	Images       []string `json:"images"`
	Imgsz        int      `json:"imgsz"`
	Conf         float64  `json:"conf"`
	IoU          float64  `json:"iou"`
	MaxDet       int      `json:"max_det"`
	Device       string   `json:"device,omitempty"`
	Out          string   `json:"out"`
}

// evalImage is one image of the evaluated split with its ground truth.
type evalImage struct {
	path  string
	w, h  int
	truth []accuracy.Object
}

// loadSplit reads a split's images, sizes and labels (in pixels).
func loadSplit(dir string) ([]evalImage, error) {
	names, err := listImages(dir)
	if err != nil {
		return nil, err
	}
	out := make([]evalImage, 0, len(names))
	for _, n := range names {
		p := filepath.Join(dir, dataroot.Images, n)
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		boxes, err := yololabel.ReadFile(labelPath(dir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("labels of %s: %w", n, err)
		}
		im := evalImage{path: p, w: cfg.Width, h: cfg.Height}
		for _, b := range boxes {
			x1, y1, x2, y2 := b.Rect(cfg.Width, cfg.Height)
			im.truth = append(im.truth, accuracy.Object{Class: b.Class, Box: accuracy.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}})
		}
		out = append(out, im)
	}
	return out, nil
}

// predictions are the detections of one artifact, by image path.
type predictions map[string][]accuracy.Detection

// evaluate scores predictions against the split.
func evaluate(imgs []evalImage, preds predictions) (*accuracy.Result, error) {
	in := make([]accuracy.Image, len(imgs))
	for i, im := range imgs {
		in[i] = accuracy.Image{ID: filepath.Base(im.path), Truth: im.truth, Detections: preds[im.path]}
	}
	return accuracy.Evaluate(in)
}

// workerPredict runs the worker's predict command and reads its output.
func (s *Service) workerPredict(ctx context.Context, spec sdk.JobSpec, ps predictSpec, progress func(done, total int)) (predictions, error) {
	ps.Out = filepath.Join(s.jobDir(spec), fmt.Sprintf("predictions-%d.json", time.Now().UnixNano()))
	_, err := s.workerFor(spec.StateDir).run(ctx, "predict", ps, s.jobDir(spec), spec.LogPath, func(ev workerEvent) {
		if ev.Event == "progress" && progress != nil {
			progress(ev.Done, ev.Total)
		}
	})
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(ps.Out)
	if err != nil {
		return nil, err
	}
	var out struct {
		Images []struct {
			Image      string       `json:"image"`
			Detections [][6]float64 `json:"detections"`
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	p := predictions{}
	for _, im := range out.Images {
		dets := make([]accuracy.Detection, 0, len(im.Detections))
		for _, d := range im.Detections {
			dets = append(dets, accuracy.Detection{Class: int(d[5]), Score: d[4], Box: accuracy.Box{X1: d[0], Y1: d[1], X2: d[2], Y2: d[3]}})
		}
		p[im.Image] = dets
	}
	return p, nil
}

// onnxPredict runs an ONNX artifact through the ONNX backend's own code
// (plugins/onnx, as the daemon serves it), in this process.
func (s *Service) onnxPredict(ctx context.Context, path string, desc model.Descriptor, imgs []evalImage, man *sdk.ExportManifest, log hclog.Logger, progress func(done, total int)) (predictions, error) {
	if s.cfg.ONNXLibrary == "" {
		return nil, errors.New("no ONNX Runtime library configured for the gate (the daemon's onnx.library)")
	}
	cfg := pluginconfig.DefaultONNX()
	cfg.Library, cfg.MaxBatch = s.cfg.ONNXLibrary, max(desc.Batch, 4)
	b, err := onnx.New(cfg, log.Named("gate-onnx"))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := b.Load(ctx, desc, data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer b.Unload(context.Background(), res.Handle)
	params := backend.DetectParams{Params: yolo.Params{Conf: float32(man.Conf), IoU: float32(man.IoU), MaxDet: man.MaxDet}}
	out := predictions{}
	const chunk = 16
	for lo := 0; lo < len(imgs); lo += chunk {
		hi := min(lo+chunk, len(imgs))
		batch := make([][]byte, 0, hi-lo)
		for _, im := range imgs[lo:hi] {
			bb, err := os.ReadFile(im.path)
			if err != nil {
				return nil, err
			}
			batch = append(batch, bb)
		}
		results, err := b.Detect(ctx, res.Handle, batch, params)
		if err != nil {
			return nil, err
		}
		for i, r := range results {
			if r.Err != nil {
				return nil, fmt.Errorf("image %s: %v", filepath.Base(imgs[lo+i].path), r.Err)
			}
			dets := make([]accuracy.Detection, 0, len(r.Detections))
			for _, d := range r.Detections {
				dets = append(dets, accuracy.Detection{Class: d.ClassID, Score: float64(d.Score),
					Box: accuracy.Box{X1: float64(d.Box.X1), Y1: float64(d.Box.Y1), X2: float64(d.Box.X2), Y2: float64(d.Box.Y2)}})
			}
			out[imgs[lo+i].path] = dets
		}
		progress(hi, len(imgs))
	}
	return out, nil
}

// gateJob evaluates every artifact of a run's export against best.pt on the
// dataset's test split and writes gate.json and gate.md beside them.
func (s *Service) gateJob(ctx context.Context, spec sdk.JobSpec, p sdk.GateParams, em *emitter, log hclog.Logger) error {
	dir := runDir(spec.StateDir, p.Run)
	man, err := sdk.ReadExportManifest(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", sdk.ErrBadSpec, err)
	}
	manBytes, _ := os.ReadFile(filepath.Join(dir, sdk.DirExport, sdk.ExportManifestFile))
	manSum := sha256.Sum256(manBytes)
	ds, err := datasetOfRun(dir)
	if err != nil {
		return fmt.Errorf("run %s: dataset: %w", p.Run, err)
	}
	split := p.Split
	imgs, err := loadSplit(filepath.Join(ds, split))
	if err != nil {
		return err
	}
	if len(imgs) == 0 && split == "test" {
		split = "valid"
		if imgs, err = loadSplit(filepath.Join(ds, split)); err != nil {
			return err
		}
	}
	if len(imgs) == 0 {
		return fmt.Errorf("%w: dataset %s has no test or valid images to evaluate on", sdk.ErrBadSpec, ds)
	}
	paths := make([]string, len(imgs))
	for i, im := range imgs {
		paths[i] = im.path
	}
	total := 1 + len(man.Artifacts)
	step := 0
	progress := func(name string) func(done, n int) {
		return func(done, n int) {
			em.emit((float64(step)+float64(done)/float64(max(n, 1)))/float64(total), "evaluate", name,
				map[string]float64{"images_done": float64(done), "images_total": float64(n)}, false)
		}
	}
	em.emit(0, "evaluate", fmt.Sprintf("best.pt on %d %s images", len(imgs), split), nil, true)
	refPreds, err := s.workerPredict(ctx, spec, predictSpec{Kind: "ultralytics", Weights: filepath.Join(dir, man.Weights),
		Images: paths, Imgsz: man.Imgsz, Conf: man.Conf, IoU: man.IoU, MaxDet: man.MaxDet, Device: p.Device}, progress("best.pt"))
	if err != nil {
		return fmt.Errorf("gate %s: best.pt: %w", p.Run, err)
	}
	ref, err := evaluate(imgs, refPreds)
	if err != nil {
		return err
	}
	if ref.MAP50 == 0 {
		return fmt.Errorf("gate %s: best.pt finds nothing on the %d %s images (mAP50 0): the gate has no reference to judge the artifacts against", p.Run, len(imgs), split)
	}
	report := sdk.GateReport{Run: p.Run, Split: split, Images: len(imgs), Time: time.Now().UTC(), Export: hex.EncodeToString(manSum[:]),
		Reference: gateResult("best.pt", "ultralytics", "fp32", "Ultralytics (PyTorch)", ref), Passed: true}
	report.Reference.Passed = true
	exportDir := filepath.Join(dir, sdk.DirExport)
	for _, a := range man.Artifacts {
		step++
		if err := ctx.Err(); err != nil {
			return err
		}
		em.emit(float64(step)/float64(total), "evaluate", a.File, nil, true)
		tgt := a.Target()
		var preds predictions
		var path string
		err := checkArtifact(exportDir, a)
		switch {
		case err != nil:
		case a.Descriptor.Format == model.FormatONNX:
			path = "ONNX Runtime (the daemon's ONNX backend)"
			preds, err = s.onnxPredict(ctx, filepath.Join(exportDir, a.File), a.Descriptor, imgs, man, log, progress(a.File))
		case a.Descriptor.Format == model.FormatRKNN:
			path = "rknn-toolkit2 simulator"
			preds, err = s.workerPredict(ctx, spec, predictSpec{Kind: "rknn", SourceONNX: filepath.Join(exportDir, a.SourceONNX),
				Calibration: filepath.Join(exportDir, a.Calibration), RKNNPlatform: tgt.Device, Images: paths, Imgsz: man.Imgsz,
				Conf: man.Conf, IoU: man.IoU, MaxDet: man.MaxDet}, progress(a.File))
		case a.Descriptor.Format == model.FormatEngine:
			path = "TensorRT (Ultralytics)"
			preds, err = s.workerPredict(ctx, spec, predictSpec{Kind: "ultralytics", Weights: filepath.Join(exportDir, a.File),
				Images: paths, Imgsz: man.Imgsz, Conf: man.Conf, IoU: man.IoU, MaxDet: man.MaxDet, Device: p.Device}, progress(a.File))
		default:
			err = fmt.Errorf("unknown format %q", a.Descriptor.Format)
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		limit := p.MaxDropFloat
		if a.Precision == sdk.PrecisionINT8 {
			limit = p.MaxDropInt8
		}
		var r sdk.GateResult
		if err == nil {
			var res *accuracy.Result
			if res, err = evaluate(imgs, preds); err == nil {
				r = gateResult(a.File, tgt.Backend, a.Precision, path, res)
				r.Drop = round2(100 * (ref.MAP5095 - res.MAP5095))
				r.Passed = r.Drop <= limit
			}
		}
		if err != nil {
			r = sdk.GateResult{File: a.File, Backend: tgt.Backend, Precision: a.Precision, Path: path, Error: err.Error()}
			log.Warn("gate: artifact not evaluated", "file", a.File, "error", err)
		}
		r.Limit = limit
		report.Artifacts = append(report.Artifacts, r)
		report.Passed = report.Passed && r.Passed
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(exportDir, sdk.GateReportFile), b, 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(exportDir, sdk.GateMarkdownFile), []byte(gateMarkdown(&report)), 0o644); err != nil {
		return err
	}
	metrics := map[string]float64{"map50_95_pt": ref.MAP5095, "map50_pt": ref.MAP50, "passed": 0}
	var failed []string
	for _, r := range report.Artifacts {
		key := strings.TrimSuffix(r.File, filepath.Ext(r.File))
		metrics["map50_95_"+key], metrics["drop_"+key] = r.MAP5095, r.Drop
		if !r.Passed {
			why := fmt.Sprintf("%s: mAP50-95 dropped %.2f points (limit %.1f)", r.File, r.Drop, r.Limit)
			if r.Error != "" {
				why = fmt.Sprintf("%s: not evaluated: %s", r.File, r.Error)
			}
			failed = append(failed, why)
		}
	}
	if report.Passed {
		metrics["passed"] = 1
		em.emit(1, "done", fmt.Sprintf("gate passed: best.pt mAP50-95 %.3f; %d artifacts within limits", ref.MAP5095, len(report.Artifacts)), metrics, true)
		return nil
	}
	em.emit(1, "done", "gate failed", metrics, true)
	return fmt.Errorf("gate failed for run %s: %s (report: %s)", p.Run, strings.Join(failed, "; "), filepath.Join(exportDir, sdk.GateMarkdownFile))
}

// checkArtifact verifies an artifact's bytes against export.json.
func checkArtifact(dir string, a sdk.Artifact) error {
	b, err := os.ReadFile(filepath.Join(dir, a.File))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != a.SHA256 || int64(len(b)) != a.Size {
		return fmt.Errorf("%s does not match export.json (sha256 %s, %d bytes; want %s, %d bytes)", a.File, got, len(b), a.SHA256, a.Size)
	}
	return nil
}

func round2(v float64) float64 { return float64(int64(v*100+0.5*sign(v))) / 100 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

func gateResult(file, backendName, precision, path string, r *accuracy.Result) sdk.GateResult {
	g := sdk.GateResult{File: file, Backend: backendName, Precision: precision, Path: path, MAP50: r.MAP50, MAP5095: r.MAP5095}
	for _, c := range r.Classes {
		if c.Truth == 0 {
			continue
		}
		g.Classes = append(g.Classes, sdk.GateClass{Class: c.Class, Name: classes.Name(c.Class), Truth: c.Truth, AP50: c.AP50, AP5095: c.AP5095})
	}
	return g
}

// gateMarkdown renders the report as Markdown tables.
func gateMarkdown(r *sdk.GateReport) string {
	var b bytes.Buffer
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# Accuracy gate: run %s — %s\n\n%d images of the %s split, %s. mAP is COCO-style (101-point, IoU 0.50:0.95), computed by sdk/accuracy.\n\n",
		r.Run, verdict, r.Images, r.Split, r.Time.Format(time.RFC3339))
	b.WriteString("| Artifact | Backend | Precision | Inference path | mAP50 | mAP50-95 | Drop (points) | Limit | Verdict |\n|---|---|---|---|---:|---:|---:|---:|---|\n")
	row := func(g sdk.GateResult, ref bool) {
		v := "pass"
		switch {
		case ref:
			v = "reference"
		case g.Error != "":
			v = "FAIL: " + g.Error
		case !g.Passed:
			v = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.4f | %.4f | %.2f | %.1f | %s |\n", g.File, g.Backend, g.Precision, g.Path, g.MAP50, g.MAP5095, g.Drop, g.Limit, v)
	}
	row(r.Reference, true)
	for _, g := range r.Artifacts {
		row(g, false)
	}
	b.WriteString("\n## Per class (AP50 / AP50-95)\n\n| Class | Objects | best.pt |")
	for _, g := range r.Artifacts {
		fmt.Fprintf(&b, " %s |", g.File)
	}
	b.WriteString("\n|---|---:|---:|")
	for range r.Artifacts {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, c := range r.Reference.Classes {
		fmt.Fprintf(&b, "| %d %s | %d | %.3f / %.3f |", c.Class, c.Name, c.Truth, c.AP50, c.AP5095)
		for _, g := range r.Artifacts {
			found := false
			for _, gc := range g.Classes {
				if gc.Class == c.Class {
					fmt.Fprintf(&b, " %.3f / %.3f |", gc.AP50, gc.AP5095)
					found = true
				}
			}
			if !found {
				b.WriteString(" - |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
