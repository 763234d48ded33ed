// Package jobs is the daemon's job registry for the trainer plugin: it
// creates jobs (validate, augment, dataset), runs each through a Runner (the
// trainer plugin's gRPC client), keeps their state, fans progress events out
// to server-sent-event subscribers, and cancels them. It serves
// /v1/jobs... (see Register). It is imported only by the daemon.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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

// job is one job's state and subscribers.
type job struct {
	mu     sync.Mutex
	info   api.Job
	cancel context.CancelFunc
	subs   map[chan api.JobEvent]struct{}
	done   chan struct{}
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
	return &Manager{runner: runner, opts: opts, jobs: map[string]*job{}}
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
	switch trainer.JobType(typ) {
	case trainer.JobValidate:
		_, err = trainer.DecodeParams(raw, trainer.DefaultValidateParams())
	case trainer.JobAugment:
		_, err = trainer.DecodeParams(raw, trainer.DefaultAugmentParams())
	case trainer.JobDataset:
		_, err = trainer.DecodeParams(raw, trainer.DefaultDatasetParams())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	return raw, nil
}

// Create starts a job. Only one job of a type runs at a time (ErrConflict).
func (m *Manager) Create(req api.JobRequest) (api.Job, error) {
	if !trainer.JobType(req.Type).Valid() {
		return api.Job{}, fmt.Errorf("%w: unknown job type %q (want validate, augment or dataset)", ErrBadJob, req.Type)
	}
	params, err := m.mergeParams(req.Type, req.Params)
	if err != nil {
		return api.Job{}, err
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
		info:   api.Job{ID: newID(), Type: req.Type, State: api.JobQueued, Created: time.Now().UTC()},
		cancel: cancel,
		subs:   map[chan api.JobEvent]struct{}{},
		done:   make(chan struct{}),
	}
	m.jobs[j.info.ID] = j
	m.prune()
	spec := trainer.JobSpec{ID: j.info.ID, Type: trainer.JobType(req.Type), DataRoot: m.opts.DataRoot, Params: params}
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
	log := m.opts.Log.With("job", spec.ID, "type", spec.Type)
	log.Info("job started")
	err := m.runner.StartJob(ctx, spec, j.publish)
	end := time.Now().UTC()
	j.mu.Lock()
	j.info.Finished = &end
	switch {
	case err == nil:
		j.info.State = api.JobSucceeded
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		j.info.State = api.JobCanceled
	default:
		j.info.State, j.info.Error = api.JobFailed, err.Error()
	}
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

// Close cancels every job and waits for them to end.
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
