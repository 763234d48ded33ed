package sched

import (
	"fmt"
	"sync"
	"time"

	"github.com/azaion/edge/sdk/backend"
)

// entry is one registered model.
type entry struct {
	src Source
	sem chan struct{} // a slot per admitted request (waiting or running)

	mu       sync.Mutex
	state    State
	err      string
	handle   string
	load     *backend.LoadResult
	bytes    int64  // memory it takes while loaded
	gen      uint64 // bumps on every (re)load, so a stale handle is never reused
	inflight sync.WaitGroup
	lastUsed time.Time
	loadedAt time.Time
	loading  chan struct{} // set while a load runs; closed when it ends
	retired  bool          // replaced or removed: never loaded again

	// The admission estimator: the time the backend takes per image when
	// it is busy (an EWMA of the intervals between completions under load,
	// or of the call time per image when idle).
	perImage time.Duration
	lastDone time.Time
	running  int // calls in the backend now
}

func newEntry(src Source, queue int) *entry {
	return &entry{src: src, sem: make(chan struct{}, queue), state: StateLoading}
}

func (e *entry) snapshotState() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// used returns when the model was last used.
func (e *entry) used() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastUsed
}

// touch records a use.
func (e *entry) touch() {
	e.mu.Lock()
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

// ewmaWeight is the weight of a new sample in the service time estimate.
const ewmaWeight = 0.2

// finish records the end of a backend call that started at call (zero for a
// failed call) with batch images per batch.
func (e *entry) finish(call time.Time, batch int) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running--
	if call.IsZero() {
		return
	}
	var sample time.Duration
	if e.running > 0 && !e.lastDone.IsZero() && e.lastDone.After(call) {
		sample = now.Sub(e.lastDone) // busy: completions are spaced by the service time
	} else {
		sample = now.Sub(call) / time.Duration(max(batch, 1)) // idle: the call's own time
	}
	e.lastDone = now
	if e.perImage == 0 {
		e.perImage = sample
		return
	}
	e.perImage = time.Duration(float64(e.perImage)*(1-ewmaWeight) + float64(sample)*ewmaWeight)
}

func (e *entry) info() ModelInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := ModelInfo{Name: e.src.Descriptor.Name, Version: e.src.Descriptor.Version, Backend: e.src.Backend,
		Origin: e.src.Origin, State: e.state, Error: e.err, Descriptor: e.src.Descriptor, LastUsed: e.lastUsed}
	if e.load != nil && e.state == StateReady {
		i.Descriptor, i.Device, i.MaxBatch = e.load.Descriptor, e.load.Device, e.load.MaxBatch
		i.WarmupMS = float64(e.load.Warmup.Microseconds()) / 1000
		i.Version = e.load.Descriptor.Version
		i.Bytes = e.bytes
	}
	return i
}

// admit takes a queue slot for a request, or refuses it at once when the
// queue is full or its expected wait is over MaxQueueWait. The expected
// wait counts the requests ahead of it and its own run at the backend's
// recent service time per image: the estimate trails a busy machine's
// swings, and counting its own run keeps the answered requests' tail within
// the limit plus a service time or two. A request with none ahead is always
// admitted (its wait is nil, however slow the backend).
func (s *Scheduler) admit(e *entry) error {
	if max := s.opts.MaxQueueWait; max > 0 {
		e.mu.Lock()
		ahead, per := len(e.sem), e.perImage
		e.mu.Unlock()
		if wait := time.Duration(ahead+1) * per; ahead > 0 && wait > max {
			return &RetryError{After: retryAfter(wait - max), Err: fmt.Errorf("%w: model %s: %d requests ahead, an expected wait of %s is over the %s limit",
				ErrQueueFull, e.src.Descriptor.Name, ahead, wait.Round(time.Millisecond), max)}
		}
	}
	select {
	case e.sem <- struct{}{}:
		return nil
	default:
		return &RetryError{After: time.Second, Err: fmt.Errorf("%w: model %s has %d requests waiting", ErrQueueFull, e.src.Descriptor.Name, cap(e.sem))}
	}
}

// retryAfter rounds a wait up to whole seconds (at least one).
func retryAfter(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}
