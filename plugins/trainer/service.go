package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/azaion/edge/sdk/pluginconfig"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/version"
)

// Service runs trainer jobs; it implements sdk/trainer.Trainer.
type Service struct {
	cfg    pluginconfig.Trainer
	log    hclog.Logger
	worker *worker
	// stopGrace is how long a cancelled worker may take to stop before its
	// process group is killed.
	stopGrace time.Duration

	mu      sync.Mutex
	running map[string]context.CancelFunc
}

var _ sdk.Trainer = (*Service)(nil)

// New returns a Service with the configuration the daemon handed the
// plugin, logging to log (nil discards).
func New(cfg pluginconfig.Trainer, log hclog.Logger) *Service {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Service{cfg: cfg, log: log, stopGrace: 15 * time.Second, running: map[string]context.CancelFunc{}}
}

// workerFor returns the training worker for jobs in stateDir.
func (s *Service) workerFor(stateDir string) *worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker == nil || s.worker.home != filepath.Join(stateDir, "trainer") {
		s.worker = &worker{python: s.cfg.Python, home: filepath.Join(stateDir, "trainer"), grace: s.stopGrace, log: s.log}
	}
	return s.worker
}

// jobDir is a job's scratch folder (worker specs), removed when it ends.
func (s *Service) jobDir(spec sdk.JobSpec) string {
	return filepath.Join(spec.StateDir, "trainer", "jobs", spec.ID)
}

// StartJob runs one job to the end (see sdk/trainer.Trainer).
func (s *Service) StartJob(ctx context.Context, spec sdk.JobSpec, emit func(sdk.Event)) error {
	if spec.ID == "" || !spec.Type.Valid() || spec.DataRoot == "" {
		return fmt.Errorf("%w: id %q, type %q, data root %q", sdk.ErrBadSpec, spec.ID, spec.Type, spec.DataRoot)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if _, dup := s.running[spec.ID]; dup {
		s.mu.Unlock()
		return fmt.Errorf("%w: job %q is already running", sdk.ErrBadSpec, spec.ID)
	}
	s.running[spec.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, spec.ID)
		s.mu.Unlock()
	}()

	em := &emitter{fn: emit}
	log := s.log.With("job", spec.ID, "type", spec.Type)
	log.Info("job started", "data_root", spec.DataRoot)
	var err error
	switch spec.Type {
	case sdk.JobValidate:
		var p sdk.ValidateParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultValidateParams()); err == nil {
			err = validateJob(ctx, spec.DataRoot, p, em)
		}
	case sdk.JobAugment:
		var p sdk.AugmentParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultAugmentParams()); err == nil {
			err = augmentJob(ctx, spec.DataRoot, p, em, log)
		}
	case sdk.JobDataset:
		var p sdk.DatasetParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultDatasetParams()); err == nil {
			_, err = datasetJob(ctx, spec.DataRoot, p, time.Now(), em)
		}
	case sdk.JobTrain:
		var p sdk.TrainParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultTrainParams()); err == nil {
			err = s.withWorker(spec, func(w *worker) error { return s.trainJob(ctx, spec, p, em, log) })
		}
	case sdk.JobExport:
		var p sdk.ExportParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultExportParams()); err == nil {
			err = s.withWorker(spec, func(w *worker) error { return s.exportJob(ctx, spec, p, em, log) })
		}
	case sdk.JobGate:
		var p sdk.GateParams
		if p, err = sdk.DecodeParams(spec.Params, sdk.DefaultGateParams()); err == nil {
			err = s.withWorker(spec, func(w *worker) error { return s.gateJob(ctx, spec, p, em, log) })
		}
	}
	if err != nil && ctx.Err() != nil {
		err = context.Canceled
	}
	log.Info("job ended", "error", err)
	return err
}

// withWorker runs a job that needs the training worker: it checks the
// state folder, prepares the worker and removes the job's scratch folder
// afterwards.
func (s *Service) withWorker(spec sdk.JobSpec, fn func(*worker) error) error {
	if spec.StateDir == "" {
		return fmt.Errorf("%w: %s jobs need the daemon's state folder", sdk.ErrBadSpec, spec.Type)
	}
	w := s.workerFor(spec.StateDir)
	if err := w.prepare(); err != nil {
		return err
	}
	defer os.RemoveAll(s.jobDir(spec))
	return fn(w)
}

// Cancel stops a running job.
func (s *Service) Cancel(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.running[id]
	if !ok {
		return fmt.Errorf("cancel %q: %w", id, sdk.ErrUnknownJob)
	}
	c()
	return nil
}

// emitter throttles progress events to about ten a second (forced ones always
// go out) and serializes calls to the callback.
type emitter struct {
	mu   sync.Mutex
	fn   func(sdk.Event)
	last time.Time
}

func (e *emitter) emit(progress float64, stage, msg string, metrics map[string]float64, force bool) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if !force && now.Sub(e.last) < 100*time.Millisecond {
		return
	}
	e.last = now
	e.fn(sdk.Event{Progress: progress, Stage: stage, Message: msg, Metrics: metrics, Time: now.UTC()})
}

// rateMetrics returns done/total/rate/eta figures, merged with extra.
func rateMetrics(done, total int, start time.Time, extra map[string]float64) map[string]float64 {
	m := map[string]float64{"images_done": float64(done), "images_total": float64(total)}
	if el := time.Since(start).Seconds(); el > 0 && done > 0 {
		rate := float64(done) / el
		m["images_per_s"] = rate
		m["eta_s"] = float64(total-done) / rate
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// Info describes the plugin.
func (s *Service) Info(context.Context) (*sdk.Info, error) {
	return &sdk.Info{Name: "trainer", Version: version.Version, APIVersions: []string{sdk.APIVersion},
		JobTypes: []sdk.JobType{sdk.JobValidate, sdk.JobAugment, sdk.JobDataset, sdk.JobTrain, sdk.JobExport, sdk.JobGate}}, nil
}
