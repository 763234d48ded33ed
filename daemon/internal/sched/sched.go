// Package sched owns the models the daemon serves and routes detection
// requests to them: it loads every registered model into its backend (again
// after each backend relaunch), admits requests through a bounded per-model
// queue that fails fast when full, and turns backend failures into the
// package's sentinel errors. It is imported only by the daemon.
package sched

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// Errors returned by Detect and friends; localapi maps them to HTTP statuses.
var (
	// ErrUnknownModel: no model by that name.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNoModel: the request names no model and there is not exactly one.
	ErrNoModel = errors.New("no model named")
	// ErrQueueFull: the model's queue is full; retry later.
	ErrQueueFull = errors.New("queue full")
	// ErrUnavailable: the backend is down or the model is not loaded.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadModel: the backend cannot use the model (corrupt, unsupported
	// layout, wrong format).
	ErrBadModel = errors.New("bad model")
	// ErrUnsupported: the backend cannot do what was asked (a provider,
	// device or feature it lacks).
	ErrUnsupported = errors.New("unsupported")
)

// backendError maps an error of a backend call to the package's errors:
// every sentinel of sdk/backend has its counterpart here, and the backend's
// message is kept.
func backendError(err error) error {
	switch {
	case errors.Is(err, backend.ErrUnavailable):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, backend.ErrUnknownHandle):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, backend.ErrBadModel):
		return fmt.Errorf("%w: %v", ErrBadModel, err)
	case errors.Is(err, backend.ErrUnsupported):
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return err
}

// Backends gives the scheduler the running backends by name.
type Backends interface {
	// Backend returns the named backend when it is ready, or an error saying why not.
	Backend(name string) (backend.Backend, error)
	// Failed reports that a call found the backend broken.
	Failed(name string)
}

// Source is a model the daemon should serve: its (possibly partial)
// descriptor and a way to get its plaintext bytes into memory. Open is called
// at every (re)load, so plaintext need not stay in the daemon's memory.
type Source struct {
	Descriptor model.Descriptor
	// Backend is the plugin that serves it (onnx, tensorrt, rknn).
	Backend string
	// Origin says where it comes from, for the API ("file:/x/y.onnx", "store").
	Origin string
	// Open returns the plaintext model bytes.
	Open func(ctx context.Context) ([]byte, error)
}

// State is a model's state.
type State string

// Model states.
const (
	StateLoading State = "loading"
	StateReady   State = "ready"
	StateFailed  State = "failed"
)

// ModelInfo is a snapshot of one model for the API.
type ModelInfo struct {
	Name       string           `json:"name"`
	Version    string           `json:"version,omitempty"`
	Backend    string           `json:"backend"`
	Origin     string           `json:"origin"`
	State      State            `json:"state"`
	Error      string           `json:"error,omitempty"`
	Device     string           `json:"device,omitempty"`
	MaxBatch   int              `json:"max_batch,omitempty"`
	WarmupMS   float64          `json:"warmup_ms,omitempty"`
	Descriptor model.Descriptor `json:"descriptor"`
}

type entry struct {
	src Source
	sem chan struct{}

	mu       sync.Mutex
	state    State
	err      string
	handle   string
	load     *backend.LoadResult
	gen      uint64 // bumps on every (re)load, so a stale handle is never reused
	inflight sync.WaitGroup
}

// Scheduler holds the served models.
type Scheduler struct {
	backends  Backends
	log       *slog.Logger
	queueSize int

	mu     sync.RWMutex
	models map[string]*entry // by name; versions: the last added wins the bare name
}

// New returns a Scheduler whose per-model queues hold queueSize requests.
func New(b Backends, queueSize int, log *slog.Logger) *Scheduler {
	return &Scheduler{backends: b, log: log, queueSize: queueSize, models: map[string]*entry{}}
}

// Add registers a model (replacing one of the same name). It is loaded by
// LoadAll, or at once when its backend is ready (Load).
func (s *Scheduler) Add(src Source) error {
	if err := src.Descriptor.Validate(); err != nil {
		return err
	}
	e := &entry{src: src, sem: make(chan struct{}, s.queueSize), state: StateLoading}
	s.mu.Lock()
	old := s.models[src.Descriptor.Name]
	s.models[src.Descriptor.Name] = e
	s.mu.Unlock()
	if old != nil {
		s.unloadEntry(context.Background(), old)
	}
	return nil
}

// Remove unloads and forgets a model.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	e := s.models[name]
	delete(s.models, name)
	s.mu.Unlock()
	if e == nil {
		return fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	s.unloadEntry(ctx, e)
	return nil
}

func (s *Scheduler) unloadEntry(ctx context.Context, e *entry) {
	e.mu.Lock()
	h := e.handle
	e.handle, e.state = "", StateLoading
	e.mu.Unlock()
	if h == "" {
		return
	}
	e.inflight.Wait()
	if b, err := s.backends.Backend(e.src.Backend); err == nil {
		if err := b.Unload(ctx, h); err != nil {
			s.log.Warn("unload model", "model", e.src.Descriptor.Name, "error", err)
		}
	}
}

// LoadAll loads every model served by the named backend into b; the plugin
// manager calls it after each (re)launch. Failures are recorded per model
// and do not stop the others.
func (s *Scheduler) LoadAll(ctx context.Context, backendName string, b backend.Backend) {
	for _, e := range s.entries() {
		if e.src.Backend != backendName {
			continue
		}
		e.mu.Lock()
		e.handle, e.state = "", StateLoading // handles died with the old process
		e.mu.Unlock()
		s.loadEntry(ctx, e, b)
	}
}

// Load loads one registered model now (when its backend is ready).
func (s *Scheduler) Load(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	b, err := s.backends.Backend(e.src.Backend)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return s.loadEntry(ctx, e, b)
}

// LoadPending loads the registered models that are not ready, where their
// backend is ready (after models were added while it ran). Failures are
// recorded per model and logged.
func (s *Scheduler) LoadPending(ctx context.Context) {
	for _, e := range s.entries() {
		if e.info().State == StateReady {
			continue
		}
		if err := s.Load(ctx, e.src.Descriptor.Name); err != nil {
			s.log.Warn("load model", "model", e.src.Descriptor.Name, "error", err)
		}
	}
}

func (s *Scheduler) loadEntry(ctx context.Context, e *entry, b backend.Backend) error {
	name := e.src.Descriptor.Name
	start := time.Now()
	data, err := e.src.Open(ctx)
	if err != nil {
		s.setFailed(e, fmt.Errorf("open model %q: %w", name, err))
		return err
	}
	res, err := b.Load(ctx, e.src.Descriptor, data)
	clear(data)
	if err != nil {
		err = fmt.Errorf("load model %q: %w", name, backendError(err))
		s.setFailed(e, err)
		return err
	}
	e.mu.Lock()
	e.handle, e.load, e.state, e.err = res.Handle, res, StateReady, ""
	e.gen++
	e.mu.Unlock()
	s.log.Info("model ready", "model", name, "backend", e.src.Backend, "device", res.Device,
		"max_batch", res.MaxBatch, "warmup", res.Warmup, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Scheduler) setFailed(e *entry, err error) {
	e.mu.Lock()
	e.state, e.err, e.handle = StateFailed, err.Error(), ""
	e.mu.Unlock()
	s.log.Error("model failed to load", "model", e.src.Descriptor.Name, "error", err)
}

func (s *Scheduler) entries() []*entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*entry, 0, len(s.models))
	for _, e := range s.models {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src.Descriptor.Name < out[j].src.Descriptor.Name })
	return out
}

// lookup finds a model by "name" or "name:version"; an empty name picks the
// only model there is.
func (s *Scheduler) lookup(name string) (*entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name == "" {
		if len(s.models) == 1 {
			for _, e := range s.models {
				return e, nil
			}
		}
		if len(s.models) == 0 {
			return nil, fmt.Errorf("%w: no models are loaded", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: %d models are loaded, say which with the model parameter (%s)", ErrNoModel, len(s.models), strings.Join(s.namesLocked(), ", "))
	}
	n, v, _ := strings.Cut(name, ":")
	e := s.models[n]
	if e == nil || (v != "" && v != e.src.Descriptor.Version) {
		return nil, fmt.Errorf("%w %q (loaded: %s)", ErrUnknownModel, name, strings.Join(s.namesLocked(), ", "))
	}
	return e, nil
}

func (s *Scheduler) namesLocked() []string {
	names := make([]string, 0, len(s.models))
	for _, e := range s.models {
		names = append(names, e.src.Descriptor.ID())
	}
	sort.Strings(names)
	return names
}

// Registered returns the version of the model registered under name.
func (s *Scheduler) Registered(name string) (version string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.models[name]
	if e == nil {
		return "", false
	}
	return e.src.Descriptor.Version, true
}

// Models lists the registered models.
func (s *Scheduler) Models() []ModelInfo {
	var out []ModelInfo
	for _, e := range s.entries() {
		out = append(out, e.info())
	}
	return out
}

// Ready reports whether every registered model is ready, with the reasons when not.
func (s *Scheduler) Ready() (bool, []string) {
	var why []string
	for _, e := range s.entries() {
		i := e.info()
		if i.State != StateReady {
			r := fmt.Sprintf("model %s is %s", i.Name, i.State)
			if i.Error != "" {
				r += ": " + i.Error
			}
			why = append(why, r)
		}
	}
	return len(why) == 0, why
}

func (e *entry) info() ModelInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := ModelInfo{Name: e.src.Descriptor.Name, Version: e.src.Descriptor.Version, Backend: e.src.Backend,
		Origin: e.src.Origin, State: e.state, Error: e.err, Descriptor: e.src.Descriptor}
	if e.load != nil && e.state == StateReady {
		i.Descriptor, i.Device, i.MaxBatch = e.load.Descriptor, e.load.Device, e.load.MaxBatch
		i.WarmupMS = float64(e.load.Warmup.Microseconds()) / 1000
		i.Version = e.load.Descriptor.Version
	}
	return i
}

// Result is a detection result with what the API reports about it.
type Result struct {
	Model   ModelInfo
	Images  []backend.ImageResult
	Queue   time.Duration // time waiting for admission in the daemon
	Backend time.Duration // time in the backend call, transport included
}

// Detect runs a model on encoded images.
func (s *Scheduler) Detect(ctx context.Context, name string, images [][]byte, p backend.DetectParams) (*Result, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	select {
	case e.sem <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: model %s has %d requests waiting", ErrQueueFull, e.src.Descriptor.Name, cap(e.sem))
	}
	defer func() { <-e.sem }()
	e.mu.Lock()
	handle, state, lerr := e.handle, e.state, e.err
	if handle != "" {
		e.inflight.Add(1)
	}
	e.mu.Unlock()
	if handle == "" {
		msg := fmt.Sprintf("model %s is %s", e.src.Descriptor.Name, state)
		if lerr != "" {
			msg += ": " + lerr
		}
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, msg)
	}
	defer e.inflight.Done()
	b, err := s.backends.Backend(e.src.Backend)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	queued := time.Since(start)
	call := time.Now()
	res, err := b.Detect(ctx, handle, images, p)
	if err != nil {
		switch {
		case errors.Is(err, backend.ErrUnavailable):
			s.backends.Failed(e.src.Backend)
			return nil, fmt.Errorf("%w: backend %s failed during the request (it is being relaunched): %v", ErrUnavailable, e.src.Backend, err)
		case errors.Is(err, backend.ErrUnknownHandle):
			return nil, fmt.Errorf("%w: model %s is being reloaded", ErrUnavailable, e.src.Descriptor.Name)
		}
		return nil, fmt.Errorf("detect with %s: %w", e.src.Descriptor.Name, backendError(err))
	}
	return &Result{Model: e.info(), Images: res, Queue: queued, Backend: time.Since(call)}, nil
}
