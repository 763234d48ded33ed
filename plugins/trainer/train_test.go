package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/azaion/edge/internal/synthdata"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/pluginconfig"
	sdk "github.com/azaion/edge/sdk/trainer"
)

// tinyDataset writes datasets/<name>/ under dataRoot: 24 train, 8 valid
// and 8 test images of shapes at 64 px.
func tinyDataset(t *testing.T, dataRoot, name string) string {
	t.Helper()
	dir := filepath.Join(dataRoot, "datasets", name)
	for i, split := range []string{"train", "valid", "test"} {
		n := map[string]int{"train": 24, "valid": 8, "test": 8}[split]
		if err := synthdata.WriteFolder(filepath.Join(dir, split), split, n, uint64(i+1), synthdata.Options{Size: 64, MaxSide: 0.45}); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "data.yaml"), []byte("path: "+dir+"\ntrain: train/images\nval: valid/images\nnc: 80\n"), 0o644)
	return dir
}

// trainParams trains yolo11n.yaml on the tiny dataset.
func trainParams(name string, epochs int, extra map[string]any) json.RawMessage {
	p := map[string]any{"name": name, "model": "yolo11n.yaml", "imgsz": 64, "epochs": epochs, "batch": 8, "workers": 0}
	for k, v := range extra {
		p[k] = v
	}
	b, _ := json.Marshal(p)
	return b
}

func runJob(t *testing.T, s *Service, typ sdk.JobType, dataRoot, state string, params json.RawMessage) (string, error) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "job.log")
	err := s.StartJob(context.Background(), sdk.JobSpec{ID: "job-" + string(typ), Type: typ, DataRoot: dataRoot, StateDir: state,
		LogPath: logPath, Params: params}, nil)
	b, _ := os.ReadFile(logPath)
	return string(b), err
}

// TestWorkerOffline trains and exports with the real worker in a network
// namespace with no network at all (unshare -n): it needs nothing online —
// no weights, fonts, package installs or telemetry.
func TestWorkerOffline(t *testing.T) {
	py := testenv.TrainerPython(t)
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare -n (needs root, as `make test` runs): %v %s", err, out)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "python-offline")
	os.WriteFile(wrapper, []byte("#!/bin/sh\nexec unshare -n -- "+py+" \"$@\"\n"), 0o755)
	data, state := filepath.Join(dir, "data"), filepath.Join(dir, "state")
	tinyDataset(t, data, "azaion-2026-01-01")
	s := New(pluginconfig.Trainer{Python: wrapper}, hclog.NewNullLogger())
	log, err := runJob(t, s, sdk.JobTrain, data, state, trainParams("offline", 1, nil))
	if err != nil {
		t.Fatalf("train without network: %v\n%s", err, log)
	}
	elog, err := runJob(t, s, sdk.JobExport, data, state, json.RawMessage(`{"run": "offline", "formats": ["onnx"], "dynamic": false}`))
	if err != nil {
		t.Fatalf("export without network: %v\n%s", err, elog)
	}
	for _, l := range []string{log, elog} {
		for _, bad := range []string{"Downloading", "AutoUpdate", "pip install"} {
			if strings.Contains(l, bad) {
				t.Errorf("the worker tried to reach the network (%q):\n%s", bad, l)
			}
		}
	}
	man, err := sdk.ReadExportManifest(filepath.Join(state, "training", "offline"))
	if err != nil || len(man.Artifacts) != 1 || man.Artifacts[0].Descriptor.Batch != 4 || man.Artifacts[0].Descriptor.Output != "yolo-nms" {
		t.Fatalf("export manifest %+v %v", man, err)
	}
	settings, err := os.ReadFile(filepath.Join(state, "trainer", "ultralytics", "Ultralytics", "settings.json"))
	if err != nil || !strings.Contains(string(settings), `"sync": false`) {
		t.Errorf("private Ultralytics settings: %v\n%s", err, settings)
	}
}

// TestTrainBadInput: bad datasets, models and devices fail with an error
// that names the problem, before or without leaving a run behind as if it
// were complete.
func TestTrainBadInput(t *testing.T) {
	py := testenv.TrainerPython(t)
	dir := t.TempDir()
	data, state := filepath.Join(dir, "data"), filepath.Join(dir, "state")
	good := tinyDataset(t, data, "azaion-2026-01-01")
	// label-less: the images without their labels.
	unlabelled := filepath.Join(data, "datasets", "unlabelled")
	tinyDataset(t, data, "unlabelled")
	for _, s := range []string{"train", "valid", "test"} {
		os.RemoveAll(filepath.Join(unlabelled, s, "labels"))
	}
	os.MkdirAll(filepath.Join(data, "datasets", "empty", "train", "images"), 0o755)
	os.WriteFile(filepath.Join(data, "datasets", "empty", "data.yaml"), []byte("nc: 80\n"), 0o644)
	tinyDataset(t, data, "badclass")
	os.WriteFile(filepath.Join(data, "datasets", "badclass", "train", "labels", "train0003.txt"), []byte("0 0.5 0.5 0.2 0.2\n17 0.5 0.5 0.1 0.1\n"), 0o644)
	_ = good

	s := New(pluginconfig.Trainer{Python: py}, hclog.NewNullLogger())
	tests := []struct {
		name   string
		params json.RawMessage
		want   string
	}{
		{"empty dataset", trainParams("r1", 1, map[string]any{"dataset": "empty"}), "the train split has no images"},
		{"label-less dataset", trainParams("r2", 1, map[string]any{"dataset": "unlabelled"}), "no image of the train split has labels"},
		{"class outside the class system", trainParams("r3", 1, map[string]any{"dataset": "badclass"}), "train0003.txt line 2: class 17 is not a class of the class system"},
		{"no such dataset", trainParams("r4", 1, map[string]any{"dataset": "azaion-1999-01-01"}), "dataset azaion-1999-01-01 not found"},
		{"model yaml that does not exist", trainParams("r5", 1, map[string]any{"model": "yolo11q.yaml"}), "model yolo11q.yaml: not found"},
		{"fine-tune .pt that does not exist", trainParams("r6", 1, map[string]any{"model": "/nonexistent/best.pt"}), "model /nonexistent/best.pt"},
		{"device not present", trainParams("r7", 1, map[string]any{"device": "3"}), "device '3' is not present"},
		{"resume without a checkpoint", json.RawMessage(`{"resume": "never-trained"}`), "no checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, err := runJob(t, s, sdk.JobTrain, data, state, tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q\n%s", err, tc.want, log)
			}
			var p struct{ Name string }
			json.Unmarshal(tc.params, &p)
			if p.Name != "" {
				if _, err := os.Stat(filepath.Join(state, "training", p.Name, "weights", "best.pt")); err == nil {
					t.Errorf("a failed run left weights/best.pt")
				}
			}
		})
	}
	t.Run("no python configured", func(t *testing.T) {
		s := New(pluginconfig.Trainer{}, hclog.NewNullLogger())
		if _, err := runJob(t, s, sdk.JobTrain, data, state, trainParams("r8", 1, nil)); !errors.Is(err, ErrNoPython) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("export of a run that does not exist", func(t *testing.T) {
		if _, err := runJob(t, s, sdk.JobExport, data, state, json.RawMessage(`{"run": "nope"}`)); err == nil || !strings.Contains(err.Error(), "run nope has no best.pt") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("engine export without a CUDA GPU", func(t *testing.T) {
		os.MkdirAll(filepath.Join(state, "training", "fake", "weights"), 0o755)
		os.WriteFile(filepath.Join(state, "training", "fake", "weights", "best.pt"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(state, "training", "fake", "args.yaml"), []byte("imgsz: 64\n"), 0o644)
		_, err := runJob(t, s, sdk.JobExport, data, state, json.RawMessage(`{"run": "fake", "formats": ["onnx", "engine"]}`))
		if err == nil || !strings.Contains(err.Error(), "TensorRT engines are built on the GPU that runs them, and this machine has no CUDA GPU") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(state, "training", "fake", "export")); err == nil {
			t.Error("a refused export left an export folder")
		}
	})
}

// TestTrainDiskFull: a disk that fills while checkpoints are written fails
// the job with the reason and leaves only whole files (no partial
// checkpoint under its final name, no temporary files).
func TestTrainDiskFull(t *testing.T) {
	py := testenv.TrainerPython(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tinyDataset(t, data, "azaion-2026-01-01")
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o755)
	// 9 MiB: room for the worker and one 5.5 MB checkpoint, not two.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs (needs root, as `make test` runs): %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(state, syscall.MNT_DETACH) })
	s := New(pluginconfig.Trainer{Python: py}, hclog.NewNullLogger())
	log, err := runJob(t, s, sdk.JobTrain, data, state, trainParams("full", 2, nil))
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Fatalf("err = %v, want the disk-full error\n%s", err, log)
	}
	filepath.Walk(filepath.Join(state, "training"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("a temporary file was left: %s", p)
		}
		if err == nil && strings.HasSuffix(p, ".pt") && fi.Size() < 1<<20 {
			t.Errorf("a partial checkpoint is in place: %s (%d bytes)", p, fi.Size())
		}
		return nil
	})
}
