package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yololabel"
)

// trainSpec is what the worker's train command reads.
type trainSpec struct {
	RunDir   string         `json:"run_dir"`
	Resume   bool           `json:"resume,omitempty"`
	Model    string         `json:"model,omitempty"`
	Data     string         `json:"data,omitempty"`
	Imgsz    int            `json:"imgsz,omitempty"`
	Epochs   int            `json:"epochs,omitempty"`
	Batch    int            `json:"batch,omitempty"`
	Device   *string        `json:"device,omitempty"`
	Patience int            `json:"patience,omitempty"`
	Workers  *int           `json:"workers,omitempty"`
	Seed     int            `json:"seed"`
	Args     map[string]any `json:"args,omitempty"`
}

// runInfo is training/<run>/azaion-run.json: what the run was asked to do.
type runInfo struct {
	Run     string          `json:"run"`
	Dataset string          `json:"dataset"`
	Created time.Time       `json:"created"`
	Params  sdk.TrainParams `json:"params"`
}

// runDir returns the folder of a training run.
func runDir(stateDir, run string) string { return filepath.Join(stateDir, sdk.DirTraining, run) }

// newestDataset returns the newest datasets/azaion-* folder (by name: the
// default names are dates).
func newestDataset(dataRoot string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(dataRoot, dataroot.Datasets))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "azaion-") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%w: no dataset in %s (run `azaion dataset build` first, or name one with dataset)", sdk.ErrBadSpec, filepath.Join(dataRoot, dataroot.Datasets))
	}
	sort.Strings(names)
	return names[len(names)-1], nil
}

// datasetStats counts what a dataset split holds.
type datasetStats struct {
	Images, Labelled, Boxes int
}

// checkDataset checks that a dataset can be trained on: a train split with
// labelled images, every label line valid and its class a used class slot.
// It returns the per-split counts.
func checkDataset(dir string) (map[string]datasetStats, error) {
	if _, err := os.Stat(filepath.Join(dir, "data.yaml")); err != nil {
		return nil, fmt.Errorf("%w: dataset %s has no data.yaml (build it with `azaion dataset build`)", sdk.ErrBadSpec, dir)
	}
	out := map[string]datasetStats{}
	for _, split := range []string{"train", "valid", "test"} {
		sd := filepath.Join(dir, split)
		imgs, err := listImages(sd)
		if err != nil {
			return nil, err
		}
		var st datasetStats
		st.Images = len(imgs)
		for _, im := range imgs {
			boxes, err := yololabel.ReadFile(labelPath(sd, im))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%w: dataset %s: %s/labels/%s: %v", sdk.ErrBadSpec, filepath.Base(dir), split, dataroot.Stem(im)+".txt", err)
			}
			for i, b := range boxes {
				if !classes.Used(b.Class) {
					return nil, fmt.Errorf("%w: dataset %s: %s/labels/%s line %d: class %d is not a class of the class system (0-%d, used slots only)",
						sdk.ErrBadSpec, filepath.Base(dir), split, dataroot.Stem(im)+".txt", i+1, b.Class, classes.Slots-1)
				}
				if r := yololabel.Check(b, yololabel.CheckOptions{Tolerance: 0.01}); r != "" {
					return nil, fmt.Errorf("%w: dataset %s: %s/labels/%s line %d: %s", sdk.ErrBadSpec, filepath.Base(dir), split, dataroot.Stem(im)+".txt", i+1, r)
				}
			}
			if len(boxes) > 0 {
				st.Labelled++
				st.Boxes += len(boxes)
			}
		}
		out[split] = st
	}
	switch {
	case out["train"].Images == 0:
		return nil, fmt.Errorf("%w: dataset %s: the train split has no images", sdk.ErrBadSpec, filepath.Base(dir))
	case out["train"].Labelled == 0:
		return nil, fmt.Errorf("%w: dataset %s: no image of the train split has labels", sdk.ErrBadSpec, filepath.Base(dir))
	case out["valid"].Images == 0:
		return nil, fmt.Errorf("%w: dataset %s: the valid split has no images", sdk.ErrBadSpec, filepath.Base(dir))
	}
	return out, nil
}

// runDataYAML writes training/<run>/data.yaml pointing at the dataset
// folder where it is now (the dataset's own data.yaml holds the path it
// was built at).
func runDataYAML(run, dataset string) (string, error) {
	y, err := yaml.Marshal(dataYAML{Path: dataset, Train: "train/images", Val: "valid/images", Test: "test/images",
		NC: classes.Slots, Names: classes.Names()})
	if err != nil {
		return "", err
	}
	p := filepath.Join(run, "data.yaml")
	return p, atomicfile.Write(p, y, 0o644)
}

// trainJob trains (or resumes) a run with the Python worker.
func (s *Service) trainJob(ctx context.Context, spec sdk.JobSpec, p sdk.TrainParams, em *emitter, log hclog.Logger) error {
	if spec.StateDir == "" {
		return fmt.Errorf("%w: train needs the state folder", sdk.ErrBadSpec)
	}
	ws := trainSpec{}
	var run string
	if p.Resume != "" {
		run = p.Resume
		dir := runDir(spec.StateDir, run)
		if _, err := os.Stat(filepath.Join(dir, "weights", "last.pt")); err != nil {
			return fmt.Errorf("%w: resume %s: no checkpoint (%s/weights/last.pt): no epoch of it finished", sdk.ErrBadSpec, run, dir)
		}
		ws = trainSpec{RunDir: dir, Resume: true}
		if p.Device != "" {
			ws.Device = &p.Device
		}
		em.emit(0, "resume", "resuming run "+run, nil, true)
	} else {
		run = p.Name
		if run == "" {
			return fmt.Errorf("%w: train needs a run name", sdk.ErrBadSpec)
		}
		ds := p.Dataset
		if ds == "" {
			var err error
			if ds, err = newestDataset(spec.DataRoot); err != nil {
				return err
			}
		}
		dsDir := filepath.Join(spec.DataRoot, dataroot.Datasets, ds)
		if st, err := os.Stat(dsDir); err != nil || !st.IsDir() {
			return fmt.Errorf("%w: dataset %s not found in %s", sdk.ErrBadSpec, ds, filepath.Join(spec.DataRoot, dataroot.Datasets))
		}
		em.emit(0, "check", "checking dataset "+ds, nil, true)
		stats, err := checkDataset(dsDir)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p.Model, ".pt") {
			if _, err := os.Stat(p.Model); err != nil {
				return fmt.Errorf("%w: model %s: %v", sdk.ErrBadSpec, p.Model, err)
			}
		}
		dir := runDir(spec.StateDir, run)
		if _, err := os.Stat(filepath.Join(dir, "weights")); err == nil {
			return fmt.Errorf("%w: run %s already exists (resume it, or pick another name)", sdk.ErrBadSpec, run)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		data, err := runDataYAML(dir, dsDir)
		if err != nil {
			return err
		}
		info, _ := json.MarshalIndent(runInfo{Run: run, Dataset: ds, Created: time.Now().UTC(), Params: p}, "", "  ")
		if err := atomicfile.Write(filepath.Join(dir, "azaion-run.json"), info, 0o644); err != nil {
			return err
		}
		batch := p.Batch
		if batch == 0 {
			batch = -1 // Ultralytics AutoBatch: from GPU memory; 16 on CPU
		}
		workers := p.Workers
		ws = trainSpec{RunDir: dir, Model: p.Model, Data: data, Imgsz: p.Imgsz, Epochs: p.Epochs, Batch: batch,
			Device: &p.Device, Patience: p.Patience, Workers: &workers, Seed: p.Seed, Args: p.Args}
		log.Info("training", "run", run, "dataset", ds, "train_images", stats["train"].Images, "model", p.Model, "imgsz", p.Imgsz, "epochs", p.Epochs)
		em.emit(0, "train", fmt.Sprintf("run %s: %d train / %d valid images of %s", run, stats["train"].Images, stats["valid"].Images, ds),
			map[string]float64{"images_train": float64(stats["train"].Images), "images_valid": float64(stats["valid"].Images)}, true)
	}

	tp := &trainProgress{em: em, run: run}
	res, err := s.workerFor(spec.StateDir).run(ctx, "train", ws, s.jobDir(spec), spec.LogPath, tp.onEvent)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("train %s: %w", run, err)
	}
	var out struct {
		Best    string             `json:"best"`
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return fmt.Errorf("train %s: worker result: %w", run, err)
	}
	m := tp.metrics()
	for k, v := range out.Metrics {
		m["final_"+k] = v
	}
	em.emit(1, "done", fmt.Sprintf("run %s: best.pt mAP50 %.3f, mAP50-95 %.3f", run, out.Metrics["map50"], out.Metrics["map50_95"]), m, true)
	return nil
}

// trainProgress turns the worker's train events into job events: progress
// per batch (losses, images/s, ETA) and per epoch (precision, recall, mAP).
type trainProgress struct {
	em         *emitter
	run        string
	epochs     int
	startEpoch int
	epochStart time.Time
	epochTimes []float64
	last       map[string]float64 // the last epoch's validation metrics
	cur        map[string]float64
}

func (t *trainProgress) metrics() map[string]float64 {
	m := map[string]float64{}
	for k, v := range t.cur {
		m[k] = v
	}
	for k, v := range t.last {
		m[k] = v
	}
	return m
}

// eta estimates the seconds left from the mean epoch time.
func (t *trainProgress) eta(epoch int, frac float64) float64 {
	var mean float64
	if n := len(t.epochTimes); n > 0 {
		for _, v := range t.epochTimes {
			mean += v
		}
		mean /= float64(n)
	} else if frac > 0 && !t.epochStart.IsZero() {
		mean = time.Since(t.epochStart).Seconds() / frac
	}
	if mean == 0 {
		return -1
	}
	return mean * (float64(t.epochs-epoch) + (1 - frac))
}

func (t *trainProgress) onEvent(ev workerEvent) {
	switch ev.Event {
	case "start":
		t.epochs, t.startEpoch = ev.Epochs, ev.StartEpoch
		msg := fmt.Sprintf("run %s: %d epochs on %s", t.run, ev.Epochs, ev.Device)
		if ev.StartEpoch > 0 {
			msg = fmt.Sprintf("run %s: resuming at epoch %d of %d on %s", t.run, ev.StartEpoch+1, ev.Epochs, ev.Device)
		}
		t.em.emit(float64(ev.StartEpoch)/float64(max(ev.Epochs, 1)), "train", msg, nil, true)
	case "batch":
		if ev.Batch == 1 {
			t.epochStart = time.Now()
		}
		t.epochs = ev.Epochs
		frac := float64(ev.Batch) / float64(max(ev.Batches, 1))
		m := map[string]float64{"epoch": float64(ev.Epoch), "epochs": float64(ev.Epochs), "batch": float64(ev.Batch),
			"batches": float64(ev.Batches), "images_per_s": ev.ImagesPerS}
		for k, v := range ev.Losses {
			m["loss_"+k] = v
		}
		if eta := t.eta(ev.Epoch, frac); eta >= 0 {
			m["eta_s"] = eta
		}
		t.cur = m
		t.em.emit((float64(ev.Epoch-1)+frac)/float64(max(ev.Epochs, 1)), "train",
			fmt.Sprintf("epoch %d/%d", ev.Epoch, ev.Epochs), t.metrics(), false)
	case "epoch":
		t.epochTimes = append(t.epochTimes, ev.EpochTime)
		t.last = map[string]float64{"epoch_time_s": ev.EpochTime}
		for k, v := range ev.Metrics {
			t.last[k] = v
		}
		m := t.metrics()
		m["epoch"], m["epochs"] = float64(ev.Epoch), float64(ev.Epochs)
		if eta := t.eta(ev.Epoch, 1); eta >= 0 {
			m["eta_s"] = eta
		}
		t.em.emit(float64(ev.Epoch)/float64(max(ev.Epochs, 1)), "epoch",
			fmt.Sprintf("epoch %d/%d: mAP50 %.3f, mAP50-95 %.3f, precision %.3f, recall %.3f", ev.Epoch, ev.Epochs,
				ev.Metrics["map50"], ev.Metrics["map50_95"], ev.Metrics["precision"], ev.Metrics["recall"]), m, true)
	case "final":
		t.em.emit(1, "validate", fmt.Sprintf("best.pt: mAP50 %.3f, mAP50-95 %.3f", ev.Metrics["map50"], ev.Metrics["map50_95"]), t.metrics(), true)
	}
}
