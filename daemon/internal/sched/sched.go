// Package sched owns the models the daemon serves and routes detection
// requests to them. It loads registered models into their backend (again
// after each backend relaunch, in parallel, most recently used first), keeps
// each backend within its limits (models loaded, bytes) by unloading the
// least recently used, unloads models idle longer than the keep-alive, loads
// an unloaded model when a request asks for it, replaces a served model
// atomically (load the new version, switch, unload the old), admits requests
// by their expected wait and turns backend failures into the package's
// sentinel errors. It is imported only by the daemon.
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
	// ErrQueueFull: the model's queue is full or its expected wait is over
	// the limit; retry later (the error's RetryAfter says when).
	ErrQueueFull = errors.New("queue full")
	// ErrUnavailable: the backend is down or the model is not loaded.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadModel: the backend cannot use the model (corrupt, unsupported
	// layout, wrong format).
	ErrBadModel = errors.New("bad model")
	// ErrUnsupported: the backend cannot do what was asked (a provider,
	// device or feature it lacks).
	ErrUnsupported = errors.New("unsupported")
	// ErrBadSource: the backend cannot use a video source (not a video, an
	// unknown codec, a stream that does not answer, over a limit).
	ErrBadSource = errors.New("bad video source")
)

// RetryError is an error that says when to try again.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }

// Unwrap returns the error.
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter is when to try again.
func (e *RetryError) RetryAfter() time.Duration { return e.After }

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
	case errors.Is(err, backend.ErrBusy):
		return &RetryError{After: time.Second, Err: fmt.Errorf("%w: %v", ErrQueueFull, err)}
	case errors.Is(err, backend.ErrBadSource):
		return fmt.Errorf("%w: %v", ErrBadSource, err)
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
	// StateLoading: being loaded (or waiting for its backend).
	StateLoading State = "loading"
	// StateReady: loaded and serving.
	StateReady State = "ready"
	// StateFailed: the last load failed.
	StateFailed State = "failed"
	// StateUnloaded: registered, not in memory (idle, evicted or unloaded
	// on request); a request for it loads it.
	StateUnloaded State = "unloaded"
)

// Limits bound what one backend holds in memory (0 = no limit).
type Limits struct {
	// MaxModels is how many models may be loaded at once.
	MaxModels int
	// MaxBytes is how many bytes the loaded models may take (as the backend
	// reports them, else their file size).
	MaxBytes int64
}

// Options configure a Scheduler.
type Options struct {
	// QueueSize is how many requests may wait per model (default 64).
	QueueSize int
	// MaxQueueWait refuses (429) a request whose expected wait in the
	// queue is longer (0 = only the queue size bounds it).
	MaxQueueWait time.Duration
	// KeepAlive unloads a model unused for longer (0 = never).
	KeepAlive time.Duration
	// LoadTimeout bounds how long one load may take, and how long a request
	// waits for its unloaded model to load (default 2m).
	LoadTimeout time.Duration
	// LoadParallel is how many models load at once after a backend
	// (re)launch (default 2).
	LoadParallel int
	// Limits are per backend name.
	Limits map[string]Limits
	Log    *slog.Logger
}

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
	Bytes      int64            `json:"bytes,omitempty"`
	LastUsed   time.Time        `json:"last_used,omitzero"`
	Descriptor model.Descriptor `json:"descriptor"`
}

// Scheduler holds the served models.
type Scheduler struct {
	backends Backends
	opts     Options
	log      *slog.Logger

	mu     sync.RWMutex
	models map[string]*entry // by name; versions: the last added wins the bare name

	names sync.Map // model name -> *sync.Mutex: one Add or Remove of a name at a time
	room  sync.Map // backend name -> *sync.Mutex: one eviction decision at a time
}

// New returns a Scheduler.
func New(b Backends, opts Options) *Scheduler {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = 2 * time.Minute
	}
	if opts.LoadParallel <= 0 {
		opts.LoadParallel = 2
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{backends: b, opts: opts, log: opts.Log, models: map[string]*entry{}}
}

func lockOf(m *sync.Map, key string) *sync.Mutex {
	l, _ := m.LoadOrStore(key, &sync.Mutex{})
	return l.(*sync.Mutex)
}

// Add registers a model. A model of the same name that is serving keeps
// serving until the new one is loaded: Add loads the new one first (when
// its backend is ready), switches, and unloads the old one; if the new one
// fails to load, the old one stays and Add returns the error. Otherwise the
// model is registered and loaded by LoadAll, Load or the first request.
func (s *Scheduler) Add(src Source) error {
	if err := src.Descriptor.Validate(); err != nil {
		return err
	}
	name := src.Descriptor.Name
	l := lockOf(&s.names, name)
	l.Lock()
	defer l.Unlock()
	e := newEntry(src, s.opts.QueueSize)
	s.mu.RLock()
	old := s.models[name]
	s.mu.RUnlock()
	if old != nil && old.snapshotState() == StateReady {
		if b, err := s.backends.Backend(src.Backend); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.LoadTimeout)
			err := s.loadEntry(ctx, e, b)
			cancel()
			if err != nil {
				return fmt.Errorf("model %s stays at the version it serves: %w", old.src.Descriptor.ID(), err)
			}
		}
	}
	s.mu.Lock()
	s.models[name] = e
	s.mu.Unlock()
	if old != nil {
		s.retire(context.Background(), old)
	}
	return nil
}

// Remove unloads and forgets a model.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	l := lockOf(&s.names, name)
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	e := s.models[name]
	delete(s.models, name)
	s.mu.Unlock()
	if e == nil {
		return fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	s.retire(ctx, e)
	return nil
}

// Unload frees a model's memory in its backend; it stays registered and
// the next request for it loads it again.
func (s *Scheduler) Unload(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	s.unloadEntry(ctx, e, StateUnloaded)
	return nil
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

// Ready reports whether every registered model is ready (or unloaded on
// purpose), with the reasons when not.
func (s *Scheduler) Ready() (bool, []string) {
	var why []string
	for _, e := range s.entries() {
		i := e.info()
		if i.State != StateReady && i.State != StateUnloaded {
			r := fmt.Sprintf("model %s is %s", i.Name, i.State)
			if i.Error != "" {
				r += ": " + i.Error
			}
			why = append(why, r)
		}
	}
	return len(why) == 0, why
}

// Result is a detection result with what the API reports about it.
type Result struct {
	Model   ModelInfo
	Images  []backend.ImageResult
	Queue   time.Duration // time waiting for admission (and a load) in the daemon
	Backend time.Duration // time in the backend call, transport included
}

// Detect runs a model on encoded images. A request whose expected wait is
// over MaxQueueWait, or that finds the model's queue full, fails at once
// with ErrQueueFull (a *RetryError); one for an unloaded model loads it and
// waits up to LoadTimeout.
func (s *Scheduler) Detect(ctx context.Context, name string, images [][]byte, p backend.DetectParams) (*Result, error) {
	start := time.Now()
	e, err := s.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() { <-e.sem }()
	e.mu.Lock()
	handle, state, lerr := e.handle, e.state, e.err
	if handle != "" {
		e.inflight.Add(1)
		e.running++
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
		e.finish(time.Time{}, 0)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	queued := time.Since(start)
	call := time.Now()
	res, err := b.Detect(ctx, handle, images, p)
	if err != nil {
		e.finish(time.Time{}, 0)
		switch {
		case errors.Is(err, backend.ErrUnavailable):
			s.backends.Failed(e.src.Backend)
			return nil, fmt.Errorf("%w: backend %s failed during the request (it is being relaunched): %v", ErrUnavailable, e.src.Backend, err)
		case errors.Is(err, backend.ErrUnknownHandle):
			return nil, fmt.Errorf("%w: model %s is being reloaded", ErrUnavailable, e.src.Descriptor.Name)
		}
		return nil, fmt.Errorf("detect with %s: %w", e.src.Descriptor.Name, backendError(err))
	}
	batch := 1
	if len(res) > 0 && res[0].BatchSize > 0 {
		batch = res[0].BatchSize
	}
	e.finish(call, batch)
	return &Result{Model: e.info(), Images: res, Queue: queued, Backend: time.Since(call)}, nil
}

// acquire looks a model up, admits a call to it (a place in its queue,
// which the caller gives back with <-e.sem) and loads it when it is not
// loaded; a model replaced meanwhile is looked up again.
func (s *Scheduler) acquire(ctx context.Context, name string) (*entry, error) {
	for attempt := 0; ; attempt++ {
		e, err := s.lookup(name)
		if err != nil {
			return nil, err
		}
		if err := s.admit(e); err != nil {
			return nil, err
		}
		e.touch()
		err = s.ensureLoaded(ctx, e, false)
		if err == nil {
			return e, nil
		}
		<-e.sem
		e.mu.Lock()
		retired := e.retired
		e.mu.Unlock()
		if !retired || attempt == 2 { // a replaced entry: look the name up again
			return nil, err
		}
	}
}

// DetectVideo runs a model on a video file or live stream (see
// backend.Backend.DetectVideo), calling emit with the model's snapshot and
// each event. It is admitted like a request and loads the model when it is
// not loaded; while it runs it holds one place in the model's queue, so the
// model counts as in use (never unloaded as idle or to make room). It does
// not hold the model against replacement or removal: a model unloaded or
// reloaded under a video ends it with ErrUnavailable, as does a backend
// that fails; a source the backend cannot use is ErrBadSource.
func (s *Scheduler) DetectVideo(ctx context.Context, name string, req backend.VideoRequest, emit func(ModelInfo, backend.VideoEvent) error) error {
	e, err := s.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer func() {
		e.touch()
		<-e.sem
	}()
	e.mu.Lock()
	handle, state, lerr := e.handle, e.state, e.err
	e.mu.Unlock()
	if handle == "" {
		msg := fmt.Sprintf("model %s is %s", e.src.Descriptor.Name, state)
		if lerr != "" {
			msg += ": " + lerr
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, msg)
	}
	b, err := s.backends.Backend(e.src.Backend)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	info := e.info()
	var emitErr error
	err = b.DetectVideo(ctx, handle, req, func(ev backend.VideoEvent) error {
		emitErr = emit(info, ev)
		return emitErr
	})
	switch {
	case err == nil:
		return nil
	case emitErr != nil && errors.Is(err, emitErr), ctx.Err() != nil:
		return err
	case errors.Is(err, backend.ErrUnavailable):
		s.backends.Failed(e.src.Backend)
		return fmt.Errorf("%w: backend %s failed during the video (it is being relaunched): %v", ErrUnavailable, e.src.Backend, err)
	case errors.Is(err, backend.ErrUnknownHandle):
		return fmt.Errorf("%w: model %s is being reloaded", ErrUnavailable, e.src.Descriptor.Name)
	}
	return fmt.Errorf("video with %s: %w", e.src.Descriptor.Name, backendError(err))
}

// Lookup returns the model a request for name would use ("name",
// "name:version", or "" when exactly one model is registered).
func (s *Scheduler) Lookup(name string) (ModelInfo, error) {
	e, err := s.lookup(name)
	if err != nil {
		return ModelInfo{}, err
	}
	return e.info(), nil
}
