package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient/apitest"
	"github.com/azaion/edge/internal/synthdata"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/accuracy"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/trainer"
)

// trainerConfig is the daemon configuration of the training tests: a small
// YOLO11n at 160 px that learns the synthetic shapes in 10 epochs on a CPU
// (AdamW with a higher learning rate, no mosaic), RKNN calibrated on 50
// images, and an INT8 limit that fits a model trained for 10 epochs (its
// INT8 drop is 4-5 points; the float limit stays at the default 1.0).
const trainerConfig = `onnx:
  intra_op_threads: 2
trainer:
  enabled: true
  train:
    model: yolo11n.yaml
    imgsz: 160
    epochs: 10
    batch: 8
    workers: 0
    patience: 100
    args: {optimizer: AdamW, lr0: 0.01, warmup_epochs: 1, mosaic: 0}
  export:
    calibration: 50
  gate:
    max_drop_int8: 10
`

// TestTrainPipeline runs the whole training loop through the real binaries
// (azaion serve with the trainer and ONNX plugins, the CLI, the Python
// worker with real Ultralytics on the CPU) on a synthetic dataset of shapes:
//
//   - dataset build, then train yolo11n.yaml from scratch; cancel in epoch 3:
//     the worker's process group is gone and last.pt is left;
//   - restart the daemon: the job history is still there; resume with
//     --export onnx,rknn --gate: training ends at epoch 10 with a real mAP50,
//     export writes ONNX (NMS, batch 4 and dynamic) and RKNN (INT8, from the
//     simulator), and the gate passes with the float ONNX equal to best.pt;
//   - a damaged ONNX (class order swapped) fails the gate;
//   - the daemon serves the exported ONNX and finds the shapes in fresh images;
//   - publish sends the gated artifacts as one bundle (fake API + versitygw),
//     and a device daemon with only the ONNX backend pulls only the ONNX
//     artifact and serves it.
func TestTrainPipeline(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	plugin := testenv.Binary(t, "plugins/trainer/cmd/azaion-plugin-trainer")
	python := testenv.TrainerPython(t)
	const email, password = "trainer@example.com", "train-test-password"
	srv := apitest.New(t, map[string]string{email: password})
	s3key, s3secret := testenv.Env(t, "AZAION_TEST_S3_ACCESS_KEY", "the S3 server"), testenv.Env(t, "AZAION_TEST_S3_SECRET_KEY", "the S3 server")

	dir := t.TempDir()
	data, state := filepath.Join(dir, "data"), filepath.Join(dir, "state")
	models := filepath.Join(dir, "models")
	os.MkdirAll(models, 0o755)
	if err := synthdata.WriteFolder(filepath.Join(data, "data-processed"), "shape", 280, 1, synthdata.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "azaion.yaml")
	os.WriteFile(cfg, []byte(trainerConfig), 0o644)
	sock := filepath.Join(dir, "azaion.sock")
	distEnv := []string{
		"AZAION_API_URL=" + srv.URL, "AZAION_API_CA_FILE=" + srv.CAFile, "AZAION_API_EMAIL=" + email, "AZAION_API_PASSWORD=" + password,
		"AZAION_CDN_ENDPOINT=" + testenv.Env(t, "AZAION_TEST_S3_ENDPOINT", "the S3 server (versitygw)"),
		fmt.Sprintf("AZAION_CDN_BUCKET=train-test-%d", time.Now().UnixNano()),
		"AZAION_CDN_READ_KEY_ID=" + s3key, "AZAION_CDN_READ_SECRET=" + s3secret,
		"AZAION_CDN_WRITE_KEY_ID=" + s3key, "AZAION_CDN_WRITE_SECRET=" + s3secret,
	}
	env := append(append(os.Environ(),
		"AZAION_CONFIG="+cfg,
		"AZAION_HTTP_ADDR=",
		"AZAION_SOCKET="+sock,
		"AZAION_STATE_DIR="+state,
		"AZAION_MODELS_DIR="+models,
		"AZAION_PLUGIN_DIR="+filepath.Dir(plugin),
		"AZAION_DATA_DIR="+data,
		"AZAION_ORT_LIB="+testenv.ORTLib(t),
		"AZAION_TRAINER_PYTHON="+python,
		"AZAION_LOG_FORMAT=json",
	), distEnv...)
	c := api.NewSocketClient(sock)
	ctx := context.Background()
	serve := func() *proc {
		t.Helper()
		p := startProc(t, azaion, env, "serve")
		waitUntil(t, 2*time.Minute, "daemon ready", func() error { return c.Ready(ctx) })
		return p
	}
	daemon := serve()

	// Dataset: 280 images of shapes -> 201/39/40.
	out := runCLI(t, azaion, env, "dataset", "build", "--split", "72/14/14", "--name", "azaion-2026-01-01")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("dataset build: %s", out)
	}

	// Train; cancel in epoch 3 (epochs 1-2 done, so last.pt exists).
	out = runCLI(t, azaion, env, "train", "--detach", "--name", "synth")
	trainID := strings.TrimSpace(out)
	var pgid int
	end, err := c.WatchJob(ctx, trainID, func(ev api.JobEvent) error {
		if pgid == 0 && ev.Metrics["epoch"] >= 3 && ev.Stage == "train" {
			pgid = workerGroup(t, trainID)
			if _, err := c.CancelJob(ctx, trainID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if end.State != api.JobCanceled || pgid == 0 {
		t.Fatalf("train job ended %s (%s) before it could be cancelled in epoch 3", end.State, end.Error)
	}
	if pids := groupMembers(pgid); len(pids) > 0 {
		t.Fatalf("processes %v of the worker's process group %d are still running after the job was cancelled", pids, pgid)
	}
	run := filepath.Join(state, "training", "synth")
	if _, err := os.Stat(filepath.Join(run, "weights", "last.pt")); err != nil {
		t.Fatalf("no resumable checkpoint after cancel: %v", err)
	}

	// Restart the daemon: the history survives; resume the run and chain
	// export and gate.
	if err := daemon.stop(t); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	daemon = serve()
	if j, err := c.GetJob(ctx, trainID); err != nil || j.State != api.JobCanceled || j.Run != "synth" {
		t.Fatalf("train job after restart: %+v %v", j, err)
	}
	start := time.Now()
	out = runCLI(t, azaion, env, "train", "--resume", "synth", "--export", "onnx,rknn", "--gate")
	t.Logf("resume + export + gate: %s\n%s", time.Since(start).Round(time.Second), out)
	for _, typ := range []string{"train", "export", "gate"} {
		if !strings.Contains(out, typ+" job ") || !strings.Contains(out, "succeeded") {
			t.Fatalf("pipeline output lacks a succeeded %s job:\n%s", typ, out)
		}
	}
	if n := resultRows(t, filepath.Join(run, "results.csv")); n != 10 {
		t.Errorf("results.csv has %d epochs, want 10 (resumed to the requested count)", n)
	}
	jobs, err := c.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resumed := jobs[len(jobs)-1]
	for _, j := range jobs {
		if j.Type == "train" && j.State == api.JobSucceeded {
			resumed = j
		}
	}
	if m := resumed.Metrics["final_map50"]; m < 0.25 {
		t.Errorf("best.pt mAP50 %.3f after 10 epochs, want >= 0.25 (the model did not learn the shapes)", m)
	}
	t.Logf("best.pt: mAP50 %.3f, mAP50-95 %.3f (Ultralytics' validation)", resumed.Metrics["final_map50"], resumed.Metrics["final_map50_95"])
	if log, err := c.JobLog(ctx, resumed.ID); err != nil || !bytes.Contains(log, []byte("Ultralytics")) {
		t.Errorf("job log: %v\n%.500s", err, log)
	}

	gate, err := trainer.ReadGateReport(run)
	if err != nil {
		t.Fatal(err)
	}
	if !gate.Passed || gate.Reference.MAP50 < 0.25 || len(gate.Artifacts) != 3 {
		t.Fatalf("gate report: %+v", gate)
	}
	for _, a := range gate.Artifacts {
		t.Logf("gate: %s (%s, %s) mAP50 %.3f mAP50-95 %.3f drop %.2f limit %.1f", a.File, a.Backend, a.Precision, a.MAP50, a.MAP5095, a.Drop, a.Limit)
		if a.Error != "" || !a.Passed {
			t.Errorf("gate: %s: %+v", a.File, a)
		}
		if a.Precision == trainer.PrecisionFP32 && (a.Drop > 1.0 || a.Drop < -1.0) {
			t.Errorf("gate: the float artifact %s differs from best.pt by %.2f points", a.File, a.Drop)
		}
	}
	if md, err := os.ReadFile(filepath.Join(run, "export", "gate.md")); err != nil || !bytes.Contains(md, []byte("| azaion-rk3588.rknn | rknn | int8 | rknn-toolkit2 simulator |")) {
		t.Errorf("gate.md: %v\n%s", err, md)
	}

	t.Run("gate fails a damaged artifact", func(t *testing.T) {
		damaged := filepath.Join(state, "training", "synth-damaged")
		for _, f := range []string{"weights/best.pt", "data.yaml", "args.yaml", "export/azaion.yaml"} {
			copyFileT(t, filepath.Join(run, f), filepath.Join(damaged, f))
		}
		onnx := filepath.Join(damaged, "export", "azaion.onnx")
		cmd := exec.Command(python, filepath.Join("testdata", "swap_classes.py"), filepath.Join(run, "export", "azaion.onnx"), onnx)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("swap classes: %v\n%s", err, b)
		}
		man, err := trainer.ReadExportManifest(run)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(onnx)
		sum := sha256.Sum256(b)
		a := man.Artifacts[0]
		a.SHA256, a.Size = hex.EncodeToString(sum[:]), int64(len(b))
		man.Run, man.Version, man.Artifacts = "synth-damaged", "synth-damaged", []trainer.Artifact{a}
		mb, _ := json.Marshal(man)
		os.WriteFile(filepath.Join(damaged, "export", "export.json"), mb, 0o644)

		cmd = exec.Command(azaion, "gate", "--run", "synth-damaged")
		cmd.Env = env
		b, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), "azaion.onnx: mAP50-95 dropped") {
			t.Fatalf("gate of the damaged artifact: %v\n%s", err, b)
		}
		report, err := trainer.ReadGateReport(damaged)
		if err != nil || report.Passed || report.Artifacts[0].Passed {
			t.Fatalf("damaged gate report: %+v %v", report, err)
		}
		// Publishing it is refused without an override.
		cmd = exec.Command(azaion, "publish", "--run", "synth-damaged")
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "the gate failed for azaion.onnx") {
			t.Fatalf("publish of a failed gate: %v\n%s", err, b)
		}
		// With an override reason it goes out, and the reason is kept.
		runCLI(t, azaion, env, "publish", "--run", "synth-damaged", "--override", "testing the override")
		var idx struct{ Override string }
		if err := json.Unmarshal(srv.Resource("models", "azaion@synth-damaged.bundle"), &idx); err != nil || idx.Override != "testing the override" {
			t.Fatalf("bundle index of the override: %+v %v", idx, err)
		}
	})

	t.Run("the daemon serves the exported ONNX", func(t *testing.T) {
		copyFileT(t, filepath.Join(run, "export", "azaion.onnx"), filepath.Join(models, "azaion.onnx"))
		copyFileT(t, filepath.Join(run, "export", "azaion.yaml"), filepath.Join(models, "azaion.yaml"))
		daemon.cmd.Process.Signal(syscall.SIGHUP)
		waitUntil(t, time.Minute, "azaion loaded", func() error {
			ms, err := c.Models(ctx)
			if err != nil {
				return err
			}
			for _, m := range ms.Models {
				if m.Name == "azaion" && m.State == "ready" {
					if m.MaxBatch != 4 || m.Output != "yolo-nms" || m.Input != "160x160" {
						t.Fatalf("served as %+v, want batch 4, yolo-nms, 160x160", m)
					}
					return nil
				}
			}
			return fmt.Errorf("%+v", ms.Models)
		})
		detectShapes(t, c, "azaion")
	})

	t.Run("publish one bundle, a device pulls the ONNX artifact", func(t *testing.T) {
		out := runCLI(t, azaion, env, "publish", "--run", "synth")
		if !strings.Contains(out, "one bundle of 2 artifacts") {
			t.Fatalf("publish: %s", out)
		}
		// A device: ONNX backend only, no trainer, its own state.
		devDir, err := os.MkdirTemp("", "azdev") // short: a Unix socket path has at most 107 bytes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(devDir) })
		devSock := filepath.Join(devDir, "azaion.sock")
		devCfg := filepath.Join(devDir, "azaion.yaml")
		os.WriteFile(devCfg, []byte("onnx:\n  intra_op_threads: 2\n"), 0o644)
		devEnv := append(append(os.Environ(),
			"AZAION_CONFIG="+devCfg, "AZAION_HTTP_ADDR=", "AZAION_SOCKET="+devSock,
			"AZAION_STATE_DIR="+filepath.Join(devDir, "state"), "AZAION_MODELS_DIR="+filepath.Join(devDir, "models"),
			"AZAION_PLUGIN_DIR="+filepath.Dir(plugin), "AZAION_ORT_LIB="+testenv.ORTLib(t),
		), distEnv...)
		dev := startProc(t, azaion, devEnv, "serve")
		dc := api.NewSocketClient(devSock)
		waitUntil(t, 2*time.Minute, "device ready", func() error { return dc.Ready(ctx) })
		before := len(srv.Gets())
		out = runCLI(t, azaion, devEnv, "models", "pull", "azaion:synth")
		if !strings.Contains(out, "loaded") {
			t.Fatalf("pull: %s", out)
		}
		gets := srv.Gets()[before:]
		want := []string{"models/azaion@synth.bundle", "models/azaion@synth.azaion.onnx.small"}
		if !slices.Equal(gets, want) {
			t.Fatalf("the device asked the API for %v, want %v (only the ONNX artifact)", gets, want)
		}
		waitUntil(t, 2*time.Minute, "device ready with the pulled model", func() error { return dc.Ready(ctx) })
		ms, err := dc.Models(ctx)
		if err != nil || len(ms.Models) != 1 || ms.Models[0].Format != "onnx" || !strings.HasPrefix(ms.Models[0].Origin, "store:azaion:synth") {
			t.Fatalf("device models: %+v %v", ms, err)
		}
		detectShapes(t, dc, "azaion")
		if err := dev.stop(t); err != nil {
			t.Errorf("device exit: %v", err)
		}
	})
	if err := daemon.stop(t); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}

// workerGroup returns the process group of the training worker of a job
// (its spec file is in the job's scratch folder, named after the job).
func workerGroup(t *testing.T, jobID string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("azaion_worker.py")) || !bytes.Contains(cmdline, []byte(jobID)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		pgrp, _ := strconv.Atoi(f[2])
		if pgrp != pid {
			t.Fatalf("worker %d is in process group %d, not its own", pid, pgrp)
		}
		return pgrp
	}
	t.Fatalf("no training worker process for job %s", jobID)
	return 0
}

// groupMembers returns the live (not zombie) processes of a process group.
func groupMembers(pgid int) []int {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// resultRows counts the epochs in an Ultralytics results.csv.
func resultRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return len(rows) - 1
}

func copyFileT(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// detectShapes sends fresh synthetic images (not in the dataset) to the
// daemon and requires half of their shapes found with the right class (at
// a low score threshold: a 10-epoch model is not confident yet).
func detectShapes(t *testing.T, c *api.Client, model string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(99, 7))
	found, total := 0, 0
	for i := range 8 {
		img, boxes := synthdata.Image(rng, synthdata.Options{})
		res, err := c.Detect(context.Background(), img, api.DetectOptions{Model: model, Conf: 0.05})
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		for _, b := range boxes {
			total++
			x1, y1, x2, y2 := b.Rect(160, 160)
			for _, d := range res.Detections {
				if d.ClassID == b.Class && accuracy.IoU(accuracy.Box{X1: x1, Y1: y1, X2: x2, Y2: y2},
					accuracy.Box{X1: float64(d.Box.X1), Y1: float64(d.Box.Y1), X2: float64(d.Box.X2), Y2: float64(d.Box.Y2)}) >= 0.5 {
					found++
					break
				}
			}
		}
	}
	t.Logf("%s found %d of %d shapes in fresh images", model, found, total)
	if found*2 < total {
		t.Errorf("%s found %d of %d shapes (class and IoU >= 0.5), want at least half", model, found, total)
	}
}
