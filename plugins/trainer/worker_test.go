package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeWorker returns a worker that runs testdata/fake_worker.py with the
// system Python in place of the training worker.
func fakeWorker(t *testing.T) (*worker, string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "fake_worker.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &worker{python: "/usr/bin/python3", script: script, home: filepath.Join(dir, "trainer"), grace: time.Second,
		log: hclog.NewNullLogger()}, dir
}

// alive reports whether a process exists and is not a zombie (a killed
// child whose new parent has not reaped it yet).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestWorkerEventsResultAndLog(t *testing.T) {
	w, dir := fakeWorker(t)
	logPath := filepath.Join(dir, "job.log")
	var got []workerEvent
	res, err := w.run(context.Background(), "events", map[string]int{"x": 1}, filepath.Join(dir, "job"), logPath, func(ev workerEvent) { got = append(got, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Event != "batch" || got[2].Batch != 3 || got[2].Losses["box"] < 0.33 || got[3].Event != "result" {
		t.Fatalf("events %+v", got)
	}
	var r struct{ OK bool }
	if json.Unmarshal(res, &r) != nil || !r.OK {
		t.Fatalf("result %s", res)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "console output of the worker") {
		t.Fatalf("the worker's console output is not in the job log:\n%s", log)
	}
	if strings.Contains(string(log), `"event"`) {
		t.Fatalf("events leaked into the job log:\n%s", log)
	}
}

func TestWorkerErrors(t *testing.T) {
	w, dir := fakeWorker(t)
	logPath := filepath.Join(dir, "job.log")
	_, err := w.run(context.Background(), "fail", nil, filepath.Join(dir, "job"), logPath, nil)
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("error event: %v", err)
	}
	_, err = w.run(context.Background(), "crash", nil, filepath.Join(dir, "job"), logPath, nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), logPath) {
		t.Fatalf("crash: %v", err)
	}
	w2 := &worker{python: "", home: filepath.Join(dir, "trainer2"), log: hclog.NewNullLogger()}
	if _, err := w2.run(context.Background(), "train", nil, dir, logPath, nil); !errors.Is(err, ErrNoPython) {
		t.Fatalf("no python: %v", err)
	}
}

// TestWorkerCancelStopsTheGroup: cancelling stops the worker and every
// process of its group — gracefully when it obeys SIGTERM, by SIGKILL to
// the group after the grace period when it does not.
func TestWorkerCancelStopsTheGroup(t *testing.T) {
	for _, cmd := range []string{"graceful", "stubborn"} {
		t.Run(cmd, func(t *testing.T) {
			w, dir := fakeWorker(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			child := 0
			start := time.Now()
			_, err := w.run(ctx, cmd, nil, filepath.Join(dir, "job"), filepath.Join(dir, "job.log"), func(ev workerEvent) {
				if ev.Event != "start" {
					return
				}
				var c struct{ Child int }
				json.Unmarshal(ev.Raw, &c)
				child = c.Child
				cancel()
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if child == 0 {
				t.Fatal("no start event")
			}
			if alive(child) {
				t.Fatalf("the worker's child %d survived the cancel", child)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("cancel took %s", el)
			}
		})
	}
}

// TestWorkerEnvironment: the worker runs offline by configuration, with a
// private Ultralytics config folder, and none of the daemon's AZAION_* or
// Python settings.
func TestWorkerEnvironment(t *testing.T) {
	t.Setenv("AZAION_API_PASSWORD", "secret")
	t.Setenv("PYTHONPATH", "/somewhere")
	t.Setenv("YOLO_OFFLINE", "0")
	w, dir := fakeWorker(t)
	res, err := w.run(context.Background(), "env", nil, filepath.Join(dir, "job"), filepath.Join(dir, "job.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Env map[string]string }
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "HF_HUB_OFFLINE": "1",
		"YOLO_CONFIG_DIR": filepath.Join(dir, "trainer", "ultralytics")}
	for k, v := range want {
		if r.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, r.Env[k], v)
		}
	}
	for _, k := range []string{"AZAION_API_PASSWORD", "PYTHONPATH"} {
		if _, ok := r.Env[k]; ok {
			t.Errorf("%s reached the worker", k)
		}
	}
}
