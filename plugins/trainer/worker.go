package trainer

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/azaion/edge/internal/atomicfile"
)

// workerScript is the Python training worker (worker/azaion_worker.py),
// embedded so the plugin always runs the worker it was built with.
//
//go:embed worker/azaion_worker.py
var workerScript []byte

// eventsFD is the file descriptor on which the worker writes its JSON lines.
const eventsFD = 3

// ErrNoPython is returned for jobs that need the training worker when no
// Python interpreter is configured or it does not run.
var ErrNoPython = errors.New("the training worker's Python environment is not available")

// workerEvent is one JSON line of the worker.
type workerEvent struct {
	Event string  `json:"event"`
	Time  float64 `json:"time"`
	// train
	Epoch       int                `json:"epoch"`
	Epochs      int                `json:"epochs"`
	StartEpoch  int                `json:"start_epoch"`
	Batch       int                `json:"batch"`
	Batches     int                `json:"batches"`
	ImagesPerS  float64            `json:"images_per_s"`
	Elapsed     float64            `json:"elapsed"`
	EpochTime   float64            `json:"epoch_time"`
	EpochElapse float64            `json:"epoch_elapsed"`
	Losses      map[string]float64 `json:"losses"`
	Metrics     map[string]float64 `json:"metrics"`
	Device      string             `json:"device"`
	// predict
	Done  int `json:"done"`
	Total int `json:"total"`
	// stage
	Stage    string  `json:"stage"`
	Progress float64 `json:"progress"`
	// error
	Message string `json:"message"`
	// Raw is the whole line.
	Raw json.RawMessage `json:"-"`
}

// worker runs the Python training worker as a supervised child process.
type worker struct {
	// python is the interpreter of the worker's virtual environment.
	python string
	// home is the plugin's private folder under the state folder: the
	// worker script and Ultralytics' settings (YOLO_CONFIG_DIR) live there.
	home string
	// grace is how long a cancelled worker may take to stop before its
	// process group is killed.
	grace time.Duration
	log   hclog.Logger

	once    sync.Once
	script  string
	initErr error
}

// prepare writes the embedded worker script (when it changed) and the
// private config folder.
func (w *worker) prepare() error {
	w.once.Do(func() {
		if w.python == "" {
			w.initErr = fmt.Errorf("%w: set trainer.python (the venv that `make deps` builds, e.g. ~/.cache/azaion-edge/trainer-venv/bin/python)", ErrNoPython)
			return
		}
		if _, err := os.Stat(w.python); err != nil {
			w.initErr = fmt.Errorf("%w: trainer.python %s: %v", ErrNoPython, w.python, err)
			return
		}
		dir := filepath.Join(w.home, "worker")
		if err := os.MkdirAll(filepath.Join(w.home, "ultralytics"), 0o750); err != nil {
			w.initErr = err
			return
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			w.initErr = err
			return
		}
		if w.script != "" { // a test's stand-in worker
			return
		}
		w.script = filepath.Join(dir, "azaion_worker.py")
		if old, err := os.ReadFile(w.script); err != nil || !bytes.Equal(old, workerScript) {
			w.initErr = atomicfile.Write(w.script, workerScript, 0o640)
		}
	})
	return w.initErr
}

// env is the worker's environment: the daemon's minus anything Python- or
// Ultralytics-related, plus the offline settings.
func (w *worker) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "YOLO_") || strings.HasPrefix(k, "PYTHON") || k == "VIRTUAL_ENV" ||
			strings.HasPrefix(k, "AZAION_") || k == "MPLCONFIGDIR" {
			continue
		}
		env = append(env, kv)
	}
	cfg := filepath.Join(w.home, "ultralytics")
	return append(env,
		"YOLO_OFFLINE=1",       // no online checks, downloads or telemetry
		"YOLO_AUTOINSTALL=0",   // never pip install at run time
		"YOLO_CONFIG_DIR="+cfg, // private settings.json (sync off)
		"MPLCONFIGDIR="+filepath.Join(cfg, "matplotlib"),
		"HF_HUB_OFFLINE=1",
		"PYTHONUNBUFFERED=1",
		"PYTHONNOUSERSITE=1",
		"PYTHONDONTWRITEBYTECODE=1",
		fmt.Sprintf("AZAION_EVENTS_FD=%d", eventsFD),
	)
}

// run runs one worker command (train, export, predict, probe) with spec and
// returns its "result" event. The worker runs in its own process group with
// its console output appended to logPath; each event line goes to onEvent.
// Cancelling ctx sends SIGTERM to the worker (it stops and leaves its last
// checkpoint), then SIGKILL to the whole group after the grace period; the
// group is gone when run returns.
func (w *worker) run(ctx context.Context, command string, spec any, workDir, logPath string, onEvent func(workerEvent)) (json.RawMessage, error) {
	if err := w.prepare(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(workDir, 0o750); err != nil {
		return nil, err
	}
	specPath := filepath.Join(workDir, command+".spec.json")
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(specPath, b, 0o640); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("job log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s worker %s %s\n", time.Now().UTC().Format(time.RFC3339), command, specPath)

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(w.python, w.script, command, specPath)
	cmd.Dir = workDir
	cmd.Env = w.env()
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw} // fd 3
	// Its own process group (cancel stops it and its data loader processes
	// together), and SIGKILL when the plugin dies, so no orphaned training
	// goes on writing into the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started, waitErr := make(chan error, 1), make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits:
		// keep this goroutine on its thread for the child's whole life (the
		// thread ends with the goroutine, after the child).
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waitErr <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrNoPython, w.python, err)
	}
	pw.Close()
	pgid := cmd.Process.Pid
	log := w.log.With("worker", command, "pid", pgid)
	log.Debug("worker started")

	var (
		result  json.RawMessage
		failure string
		stopped bool
	)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var ev workerEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				log.Warn("worker: bad event line", "line", truncate(string(line), 200))
				continue
			}
			ev.Raw = append(json.RawMessage(nil), line...)
			switch ev.Event {
			case "result":
				result = ev.Raw
			case "error":
				failure = ev.Message
			case "canceled":
				stopped = true
			}
			if onEvent != nil {
				onEvent(ev)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		pr.Close()
	}()

	var exitErr error
	select {
	case exitErr = <-waitErr:
	case <-ctx.Done():
		log.Info("cancelling worker")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case exitErr = <-waitErr:
		case <-time.After(w.grace):
			log.Warn("worker did not stop in time; killing its process group", "grace", w.grace)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			exitErr = <-waitErr
		}
	}
	// Whatever the worker left behind in its group (data loader processes)
	// goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(pgid, 5*time.Second)
	<-readDone
	fmt.Fprintf(logf, "=== %s worker %s ended: %v\n", time.Now().UTC().Format(time.RFC3339), command, exitErr)

	switch {
	case ctx.Err() != nil:
		return nil, context.Canceled
	case failure != "":
		return nil, errors.New(failure)
	case stopped:
		return nil, context.Canceled
	case exitErr != nil:
		return nil, fmt.Errorf("training worker %s: %v (see the job log %s)", command, exitErr, logPath)
	case result == nil:
		return nil, fmt.Errorf("training worker %s ended without a result (see the job log %s)", command, logPath)
	}
	return result, nil
}

// waitGroupGone waits until no live process is left in process group pgid
// (zombies, which only their parent or init can reap, do not count).
func waitGroupGone(pgid int, within time.Duration) {
	deadline := time.Now().Add(within)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether a process of group pgid is running.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
