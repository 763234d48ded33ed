// Package jobs is the daemon's job registry for the trainer plugin: it
// creates jobs (validate, augment, dataset, train, export, gate on the
// plugin; publish in the daemon), runs each through a Runner (the trainer
// plugin's gRPC client, or a daemon-side runner), chains the jobs of a
// pipeline, keeps their state and history (persisted under the state
// folder, so it survives restarts), fans progress events out to
// server-sent-event subscribers, and cancels them. It serves /v1/jobs...
// (see Register). It is imported only by the daemon.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/trainer"
)

// Runner runs a trainer job to the end, reporting progress through emit.
// *trainer.Client (the plugin over gRPC) satisfies it.
type Runner interface {
	StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error
}

// Errors of the registry (mapped to HTTP statuses in http.go).
var (
	ErrNotFound = errors.New("job not found")
	ErrConflict = errors.New("job conflict")
	ErrBadJob   = errors.New("bad job request")
	ErrClosed   = errors.New("job registry is closed")
)

// Options configure a Manager.
type Options struct {
	// DataRoot is handed to every job.
	DataRoot string
	// StateDir is the daemon's state folder: it is handed to every job
	// (training runs live in StateDir/training/), and the job history and
	// job logs are kept in StateDir/jobs/. Empty keeps the history in
	// memory only.
	StateDir string
	// Local are the job types the daemon runs itself (publish), with their
	// runners and parameter checks.
	Local map[string]LocalJob
	// Defaults are the configured parameters per job type (JSON objects);
	// a request's params override them field by field.
	Defaults map[string]json.RawMessage
	// Keep is how many finished jobs are remembered (default 100).
	Keep int
	// AutoWatch keeps an augment job in watch mode running from Run on
	// (the seed's continuous augmentation), restarting it with backoff
	// when it ends (e.g. while the plugin is down).
	AutoWatch bool
	// RetryMin and RetryMax bound the AutoWatch restart delay (defaults 2s, 1m).
	RetryMin, RetryMax time.Duration
	// Log receives job lifecycle logs.
	Log *slog.Logger
	// Trainer, when set, reports the trainer plugin's state for GET /v1/jobs.
	Trainer func() api.PluginState
}

// Manager is the job registry.
type Manager struct {
	runner Runner
	opts   Options

	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
	wg     sync.WaitGroup
}

// LocalJob is a job type the daemon runs itself.
type LocalJob struct {
	// Runner runs the job.
	Runner Runner
	// Check validates the merged parameters (nil: none).
	Check func(params json.RawMessage) error
}

// job is one job's state and subscribers.
type job struct {
	mu     sync.Mutex
	info   api.Job
	cancel context.CancelFunc
	subs   map[chan api.JobEvent]struct{}
	done   chan struct{}
	// then are the pipeline's jobs to start when this one succeeds.
	then []api.JobRequest
	// saved is when the job's record was last written.
	saved time.Time
}

// New returns a Manager that runs jobs through runner.
func New(runner Runner, opts Options) *Manager {
	if opts.Keep <= 0 {
		opts.Keep = 100
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 2 * time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(time.Minute, opts.RetryMin)
	}
	m := &Manager{runner: runner, opts: opts, jobs: map[string]*job{}}
	m.loadHistory()
	return m
}

// validType reports whether the registry runs jobs of type typ.
func (m *Manager) validType(typ string) bool {
	_, local := m.opts.Local[typ]
	return trainer.JobType(typ).Valid() || local
}

// mergeParams overlays the request's params on the configured defaults
// (top-level fields) and checks the result against the job type.
func (m *Manager) mergeParams(typ string, req json.RawMessage) (json.RawMessage, error) {
	merged := map[string]json.RawMessage{}
	if d := m.opts.Defaults[typ]; len(d) > 0 {
		if err := json.Unmarshal(d, &merged); err != nil {
			return nil, fmt.Errorf("configured %s params: %w", typ, err)
		}
	}
	if len(req) > 0 && string(req) != "null" {
		var over map[string]json.RawMessage
		if err := json.Unmarshal(req, &over); err != nil {
			return nil, fmt.Errorf("%w: params must be a JSON object: %v", ErrBadJob, err)
		}
		for k, v := range over {
			merged[k] = v
		}
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	if err := m.checkParams(typ, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// checkParams validates merged parameters against the job type.
func (m *Manager) checkParams(typ string, raw json.RawMessage) error {
	var err error
	switch trainer.JobType(typ) {
	case trainer.JobValidate:
		_, err = trainer.DecodeParams(raw, trainer.DefaultValidateParams())
	case trainer.JobAugment:
		_, err = trainer.DecodeParams(raw, trainer.DefaultAugmentParams())
	case trainer.JobDataset:
		_, err = trainer.DecodeParams(raw, trainer.DefaultDatasetParams())
	case trainer.JobTrain:
		_, err = trainer.DecodeParams(raw, trainer.DefaultTrainParams())
	case trainer.JobExport:
		_, err = trainer.DecodeParams(raw, trainer.DefaultExportParams())
	case trainer.JobGate:
		_, err = trainer.DecodeParams(raw, trainer.DefaultGateParams())
	default:
		if l, ok := m.opts.Local[typ]; ok && l.Check != nil {
			err = l.Check(raw)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	return nil
}

// setParam returns params with key set to v (params is a JSON object).
func setParam(params json.RawMessage, key string, v any) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, fmt.Errorf("%w: params must be a JSON object: %v", ErrBadJob, err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	obj[key] = b
	return json.Marshal(obj)
}

// paramString returns a string parameter of a JSON object ("" when absent).
func paramString(params json.RawMessage, key string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(params, &obj) != nil {
		return ""
	}
	var s string
	_ = json.Unmarshal(obj[key], &s)
	return s
}

// newRunName names a new training run after the time (UTC).
func newRunName(now time.Time) string { return now.UTC().Format("20060102-150405") }

// resolveRun fills the training run of a train request (a new name when
// neither name nor resume is given) and returns the run the job works on.
func (m *Manager) resolveRun(typ string, params json.RawMessage) (json.RawMessage, string, error) {
	switch typ {
	case api.JobTrain:
		if r := paramString(params, "resume"); r != "" {
			return params, r, nil
		}
		if n := paramString(params, "name"); n != "" {
			return params, n, nil
		}
		name := newRunName(time.Now())
		for i := 2; m.runExists(name); i++ {
			name = fmt.Sprintf("%s-%d", newRunName(time.Now()), i)
		}
		p, err := setParam(params, "name", name)
		return p, name, err
	case api.JobExport, api.JobGate, api.JobPublish:
		return params, paramString(params, "run"), nil
	}
	return params, "", nil
}

// runExists reports whether a training run folder of that name exists.
func (m *Manager) runExists(name string) bool {
	if m.opts.StateDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(m.opts.StateDir, trainer.DirTraining, name))
	return err == nil
}

// prepare merges and checks a request's parameters and fills its run; with
// run set (a chained job), the run parameter is set to it first.
func (m *Manager) prepare(req api.JobRequest, run string) (json.RawMessage, string, error) {
	if !m.validType(req.Type) {
		return nil, "", fmt.Errorf("%w: unknown job type %q (want validate, augment, dataset, train, export, gate or publish)", ErrBadJob, req.Type)
	}
	params := req.Params
	if run != "" {
		var err error
		if params, err = setParam(params, "run", run); err != nil {
			return nil, "", err
		}
	}
	params, err := m.mergeParams(req.Type, params)
	if err != nil {
		return nil, "", err
	}
	params, run, err = m.resolveRun(req.Type, params)
	if err != nil {
		return nil, "", err
	}
	return params, run, nil
}

// Create starts a job (and, with req.Then, a pipeline whose next job starts
// when this one succeeds). Only one job of a type runs at a time
// (ErrConflict).
func (m *Manager) Create(req api.JobRequest) (api.Job, error) {
	return m.create(req, "", "")
}

// create starts a job; previous and run are set for a chained job.
func (m *Manager) create(req api.JobRequest, previous, run string) (api.Job, error) {
	params, run, err := m.prepare(req, run)
	if err != nil {
		return api.Job{}, err
	}
	// Check the rest of the pipeline now, so a bad stage fails before any work.
	for i, next := range req.Then {
		if len(next.Then) > 0 {
			return api.Job{}, fmt.Errorf("%w: then[%d]: a chained job cannot have its own then", ErrBadJob, i)
		}
		if run == "" {
			return api.Job{}, fmt.Errorf("%w: then: only train, export, gate and publish jobs chain", ErrBadJob)
		}
		if _, _, err := m.prepare(next, run); err != nil {
			return api.Job{}, fmt.Errorf("then[%d] (%s): %w", i, next.Type, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return api.Job{}, ErrClosed
	}
	for _, j := range m.jobs {
		if info := j.snapshot(); info.Type == req.Type && !info.State.Final() {
			return api.Job{}, fmt.Errorf("%w: %s job %s is still %s", ErrConflict, info.Type, info.ID, info.State)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{
		info: api.Job{ID: newID(), Type: req.Type, State: api.JobQueued, Created: time.Now().UTC(), Run: run,
			Params: params, Previous: previous},
		cancel: cancel,
		subs:   map[chan api.JobEvent]struct{}{},
		done:   make(chan struct{}),
		then:   req.Then,
	}
	for _, t := range req.Then {
		j.info.Pending = append(j.info.Pending, t.Type)
	}
	m.jobs[j.info.ID] = j
	m.prune()
	spec := trainer.JobSpec{ID: j.info.ID, Type: trainer.JobType(req.Type), DataRoot: m.opts.DataRoot, StateDir: m.opts.StateDir,
		LogPath: m.logPath(j.info.ID), Params: params}
	m.save(j, true)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx, j, spec)
	}()
	return j.snapshot(), nil
}

// run runs one job and records its outcome.
func (m *Manager) run(ctx context.Context, j *job, spec trainer.JobSpec) {
	defer j.cancel()
	now := time.Now().UTC()
	j.mu.Lock()
	j.info.State, j.info.Started = api.JobRunning, &now
	j.mu.Unlock()
	m.save(j, true)
	log := m.opts.Log.With("job", spec.ID, "type", spec.Type)
	log.Info("job started", "run", j.info.Run)
	runner := m.runner
	if l, ok := m.opts.Local[string(spec.Type)]; ok {
		runner = l.Runner
	}
	publish := func(ev trainer.Event) {
		j.publish(ev)
		m.save(j, false)
	}
	err := runner.StartJob(ctx, spec, publish)
	var next api.Job
	var nextErr error
	if err == nil && ctx.Err() == nil && len(j.then) > 0 {
		// Start the pipeline's next stage before this job's end event goes
		// out, so followers learn its id from the end event.
		next, nextErr = m.create(api.JobRequest{Type: j.then[0].Type, Params: j.then[0].Params, Then: j.then[1:]}, spec.ID, j.info.Run)
	}
	end := time.Now().UTC()
	closed := m.isClosed() // before j.mu: m.mu is always taken first
	j.mu.Lock()
	j.info.Finished = &end
	switch {
	case err == nil && ctx.Err() == nil:
		j.info.State = api.JobSucceeded
		j.info.Pending = nil
		if nextErr != nil {
			j.info.Error = fmt.Sprintf("the pipeline stops: %s job not started: %v", j.then[0].Type, nextErr)
		} else if next.ID != "" {
			j.info.Next = next.ID
		}
	case closed && (ctx.Err() != nil || errors.Is(err, context.Canceled)):
		j.info.State, j.info.Error = api.JobInterrupted, interruptedMsg
		if j.info.Type == api.JobTrain && j.info.Run != "" {
			j.info.Error += "; continue the training with `azaion train --resume " + j.info.Run + "`"
		}
		if len(j.info.Pending) > 0 {
			j.info.Error += "; the pipeline stops: " + strings.Join(j.info.Pending, ", ") + " not run"
		}
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		j.info.State = api.JobCanceled
		if len(j.info.Pending) > 0 {
			j.info.Error = "cancelled; the pipeline stops: " + strings.Join(j.info.Pending, ", ") + " not run"
		}
	default:
		j.info.State, j.info.Error = api.JobFailed, err.Error()
		if len(j.info.Pending) > 0 {
			j.info.Error += "; the pipeline stops: " + strings.Join(j.info.Pending, ", ") + " not run"
		}
	}
	j.mu.Unlock()
	m.save(j, true)
	j.mu.Lock()
	for ch := range j.subs {
		close(ch)
		delete(j.subs, ch)
	}
	close(j.done)
	j.mu.Unlock()
	log.Info("job ended", "state", j.info.State, "error", err)
}

// publish records an event and hands it to the subscribers; a subscriber
// that is not keeping up misses progress events (never the end).
func (j *job) publish(ev trainer.Event) {
	e := api.JobEvent{Kind: api.EventProgress, Progress: ev.Progress, Stage: ev.Stage, Message: ev.Message, Metrics: ev.Metrics, Time: ev.Time}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.info.Progress, j.info.Stage, j.info.Metrics = ev.Progress, ev.Stage, ev.Metrics
	if ev.Message != "" {
		j.info.Message = ev.Message
	}
	for ch := range j.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (j *job) snapshot() api.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.info
}

// prune forgets the oldest finished jobs beyond Keep. m.mu is held.
func (m *Manager) prune() {
	if len(m.jobs) <= m.opts.Keep {
		return
	}
	var fin []api.Job
	for _, j := range m.jobs {
		if s := j.snapshot(); s.State.Final() {
			fin = append(fin, s)
		}
	}
	sort.Slice(fin, func(a, b int) bool { return fin[a].Created.Before(fin[b].Created) })
	for i := 0; i < len(m.jobs)-m.opts.Keep && i < len(fin); i++ {
		delete(m.jobs, fin[i].ID)
		m.forget(fin[i].ID)
	}
}

func (m *Manager) get(id string) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return j, nil
}

// Get returns a job.
func (m *Manager) Get(id string) (api.Job, error) {
	j, err := m.get(id)
	if err != nil {
		return api.Job{}, err
	}
	return j.snapshot(), nil
}

// List returns the jobs, newest first.
func (m *Manager) List() []api.Job {
	m.mu.Lock()
	out := make([]api.Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.snapshot())
	}
	m.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Created.After(out[b].Created) })
	return out
}

// Cancel asks a job to stop and returns its current state; a finished job
// is returned as is.
func (m *Manager) Cancel(id string) (api.Job, error) {
	j, err := m.get(id)
	if err != nil {
		return api.Job{}, err
	}
	j.cancel()
	return j.snapshot(), nil
}

// Subscribe returns the job's current state and a channel of its progress
// events, closed when the job ends; call the returned func to unsubscribe.
func (m *Manager) Subscribe(id string) (api.Job, <-chan api.JobEvent, func(), error) {
	j, err := m.get(id)
	if err != nil {
		return api.Job{}, nil, nil, err
	}
	ch := make(chan api.JobEvent, 64)
	j.mu.Lock()
	info := j.info
	if info.State.Final() {
		close(ch)
	} else {
		j.subs[ch] = struct{}{}
	}
	j.mu.Unlock()
	unsub := func() {
		j.mu.Lock()
		if _, ok := j.subs[ch]; ok {
			delete(j.subs, ch)
			close(ch)
		}
		j.mu.Unlock()
	}
	return info, ch, unsub, nil
}

// Wait blocks until the job ends or ctx is done, and returns its state.
func (m *Manager) Wait(ctx context.Context, id string) (api.Job, error) {
	j, err := m.get(id)
	if err != nil {
		return api.Job{}, err
	}
	select {
	case <-j.done:
		return j.snapshot(), nil
	case <-ctx.Done():
		return j.snapshot(), ctx.Err()
	}
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Close cancels every job and waits for them to end; the jobs that were
// running are recorded as interrupted.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, j := range m.jobs {
		j.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Run blocks until ctx ends, then closes the registry (for the daemon's
// task list). With AutoWatch it keeps a watching augment job running.
func (m *Manager) Run(ctx context.Context) {
	defer m.Close()
	if !m.opts.AutoWatch {
		<-ctx.Done()
		return
	}
	delay := m.opts.RetryMin
	for ctx.Err() == nil {
		j, err := m.Create(api.JobRequest{Type: string(trainer.JobAugment), Params: json.RawMessage(`{"watch": true}`)})
		if err == nil {
			start := time.Now()
			end, _ := m.Wait(ctx, j.ID)
			if time.Since(start) > m.opts.RetryMax {
				delay = m.opts.RetryMin
			}
			m.opts.Log.Warn("continuous augmentation stopped; restarting", "job", j.ID, "state", end.State, "error", end.Error, "in", delay)
		} else {
			m.opts.Log.Warn("continuous augmentation not started; retrying", "error", err, "in", delay)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, m.opts.RetryMax)
	}
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "job-" + hex.EncodeToString(b)
}
