package sched

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/azaion/edge/sdk/backend"
)

// LoadAll loads the models served by the named backend into b; the daemon
// calls it once the backend is up after each (re)launch, so a model serves
// as soon as it is loaded. Models load LoadParallel at a time, the most
// recently used first (a request for one not loaded yet loads it at once);
// with a model limit, those beyond it stay unloaded until asked for.
// Failures are recorded per model and do not stop the others.
func (s *Scheduler) LoadAll(ctx context.Context, backendName string, b backend.Backend) {
	var mine []*entry
	for _, e := range s.entries() {
		if e.src.Backend != backendName {
			continue
		}
		e.mu.Lock()
		if e.state == StateReady || e.handle != "" {
			e.state = StateLoading // its handle died with the old process
		}
		e.handle, e.load = "", nil
		e.mu.Unlock()
		mine = append(mine, e)
	}
	// Models with requests waiting, then the most recently used, first.
	sort.SliceStable(mine, func(i, j int) bool {
		wi, wj := len(mine[i].sem), len(mine[j].sem)
		if wi != wj {
			return wi > wj
		}
		return mine[i].used().After(mine[j].used())
	})
	lim := s.opts.Limits[backendName]
	work := make(chan *entry)
	loading := 0
	var wg sync.WaitGroup
	for range min(s.opts.LoadParallel, max(len(mine), 1)) {
		wg.Go(func() {
			for e := range work {
				s.loadShared(ctx, e, b)
			}
		})
	}
	for _, e := range mine {
		if lim.MaxModels > 0 && loading >= lim.MaxModels || e.snapshotState() == StateUnloaded {
			e.mu.Lock()
			e.state = StateUnloaded
			e.mu.Unlock()
			continue
		}
		loading++
		work <- e
	}
	close(work)
	wg.Wait()
	s.enforceBytes(ctx, backendName, nil)
}

// loadShared loads e into b unless a load of it is already running (a
// request asked for it), in which case it waits for that one.
func (s *Scheduler) loadShared(ctx context.Context, e *entry, b backend.Backend) {
	e.mu.Lock()
	if ch := e.loading; ch != nil {
		e.mu.Unlock()
		<-ch
		return
	}
	done := make(chan struct{})
	e.loading = done
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.loading = nil
		e.mu.Unlock()
		close(done)
	}()
	lctx, cancel := context.WithTimeout(ctx, s.opts.LoadTimeout)
	defer cancel()
	_ = s.loadEntry(lctx, e, b)
}

// Load loads one registered model now (it waits up to LoadTimeout; the
// load itself is not tied to ctx, so a caller that goes away does not
// leave the model half loaded).
func (s *Scheduler) Load(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.touch()
	return s.ensureLoaded(ctx, e, true)
}

// LoadPending loads the registered models that are neither ready nor
// unloaded on purpose, where their backend is ready (after models were added
// while it ran). Failures are recorded per model and logged.
func (s *Scheduler) LoadPending(ctx context.Context) {
	for _, e := range s.entries() {
		if st := e.snapshotState(); st == StateReady || st == StateUnloaded {
			continue
		}
		if err := s.ensureLoaded(ctx, e, true); err != nil {
			s.log.Warn("load model", "model", e.src.Descriptor.Name, "error", err)
		}
	}
}

// ensureLoaded returns when e is ready: it starts a load (or joins the one
// running) and waits for it up to LoadTimeout or until ctx ends. The load
// runs on its own, whoever waits for it. A model whose last load failed is
// loaded again only when retryFailed (an explicit load, not a request).
func (s *Scheduler) ensureLoaded(ctx context.Context, e *entry, retryFailed bool) error {
	e.mu.Lock()
	if e.state == StateReady && e.handle != "" {
		e.mu.Unlock()
		return nil
	}
	if e.retired {
		e.mu.Unlock()
		return &RetryError{After: time.Second, Err: fmt.Errorf("%w: model %s was just replaced or removed", ErrUnavailable, e.src.Descriptor.Name)}
	}
	if e.state == StateFailed && !retryFailed && e.loading == nil {
		msg := fmt.Sprintf("model %s is %s: %s", e.src.Descriptor.Name, e.state, e.err)
		e.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnavailable, msg)
	}
	done := e.loading
	if done == nil {
		done = make(chan struct{})
		e.loading = done
		go func() {
			defer func() {
				e.mu.Lock()
				e.loading = nil
				e.mu.Unlock()
				close(done)
			}()
			b, err := s.backends.Backend(e.src.Backend)
			if err != nil {
				s.setState(e, StateLoading, fmt.Errorf("%w: %v", ErrUnavailable, err))
				return
			}
			lctx, cancel := context.WithTimeout(context.Background(), s.opts.LoadTimeout)
			defer cancel()
			if err := s.makeRoom(lctx, e); err != nil {
				s.setState(e, StateUnloaded, err)
				return
			}
			if err := s.loadEntry(lctx, e, b); err == nil {
				s.enforceBytes(lctx, e.src.Backend, e)
			}
		}()
	}
	e.mu.Unlock()
	t := time.NewTimer(s.opts.LoadTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("%w: model %s is still loading: %v", ErrUnavailable, e.src.Descriptor.Name, ctx.Err())
	case <-t.C:
		return &RetryError{After: 5 * time.Second, Err: fmt.Errorf("%w: model %s did not load within %s", ErrUnavailable, e.src.Descriptor.Name, s.opts.LoadTimeout)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateReady && e.handle != "" {
		return nil
	}
	msg := fmt.Sprintf("model %s is %s", e.src.Descriptor.Name, e.state)
	if e.err != "" {
		msg += ": " + e.err
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, msg)
}

// setState records a state and its reason.
func (s *Scheduler) setState(e *entry, st State, err error) {
	e.mu.Lock()
	e.state, e.err = st, ""
	if err != nil {
		e.err = err.Error()
	}
	e.mu.Unlock()
}

func (s *Scheduler) loadEntry(ctx context.Context, e *entry, b backend.Backend) error {
	name := e.src.Descriptor.Name
	start := time.Now()
	data, err := e.src.Open(ctx)
	if err != nil {
		err = fmt.Errorf("open model %q: %w", name, err)
		s.setFailed(e, err)
		return err
	}
	size := int64(len(data))
	res, err := b.Load(ctx, e.src.Descriptor, data)
	clear(data)
	if err != nil {
		err = fmt.Errorf("load model %q: %w", name, backendError(err))
		s.setFailed(e, err)
		return err
	}
	e.mu.Lock()
	if e.retired { // replaced or removed while it loaded: do not keep it
		e.mu.Unlock()
		if err := b.Unload(context.WithoutCancel(ctx), res.Handle); err != nil {
			s.log.Warn("unload model", "model", name, "error", err)
		}
		return fmt.Errorf("%w: model %s was replaced or removed while it loaded", ErrUnavailable, name)
	}
	e.handle, e.load, e.state, e.err = res.Handle, res, StateReady, ""
	e.bytes = res.DeviceBytes
	if e.bytes <= 0 {
		e.bytes = size
	}
	e.loadedAt = time.Now()
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

// unloadEntry frees e's handle once its requests are done and leaves it
// in state st.
func (s *Scheduler) unloadEntry(ctx context.Context, e *entry, st State) {
	s.unloadAs(ctx, e, st, false)
}

// retire unloads e for good: it was replaced or removed, and no request
// loads it again.
func (s *Scheduler) retire(ctx context.Context, e *entry) { s.unloadAs(ctx, e, StateUnloaded, true) }

func (s *Scheduler) unloadAs(ctx context.Context, e *entry, st State, retire bool) {
	e.mu.Lock()
	if retire {
		e.retired = true
	}
	h := e.handle
	e.handle, e.load, e.state, e.err = "", nil, st, ""
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
	s.log.Info("model unloaded", "model", e.src.Descriptor.Name, "state", st)
}

// loaded returns the ready (or loading on demand) models of a backend
// other than skip, least recently used first.
func (s *Scheduler) loaded(backendName string, skip *entry) []*entry {
	var out []*entry
	for _, e := range s.entries() {
		if e == skip || e.src.Backend != backendName {
			continue
		}
		e.mu.Lock()
		in := e.handle != "" || e.loading != nil
		e.mu.Unlock()
		if in {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].used().Before(out[j].used()) })
	return out
}

// errNoRoom: every loaded model is in use.
var errNoRoom = errors.New("no room")

// makeRoom unloads the least recently used idle models of e's backend until
// e fits its model limit.
func (s *Scheduler) makeRoom(ctx context.Context, e *entry) error {
	lim := s.opts.Limits[e.src.Backend]
	if lim.MaxModels <= 0 {
		return nil
	}
	l := lockOf(&s.room, e.src.Backend)
	l.Lock()
	defer l.Unlock()
	others := s.loaded(e.src.Backend, e)
	for len(others) >= lim.MaxModels {
		victim := idle(others)
		if victim == nil {
			return fmt.Errorf("%w: %w: backend %s holds its limit of %d models and all are in use", ErrUnavailable, errNoRoom, e.src.Backend, lim.MaxModels)
		}
		s.log.Info("unloading the least recently used model to make room", "model", victim.src.Descriptor.Name, "for", e.src.Descriptor.Name)
		s.unloadEntry(ctx, victim, StateUnloaded)
		others = s.loaded(e.src.Backend, e)
	}
	return nil
}

// enforceBytes unloads the least recently used idle models of a backend
// (never keep) while the loaded ones take more than its byte limit.
func (s *Scheduler) enforceBytes(ctx context.Context, backendName string, keep *entry) {
	lim := s.opts.Limits[backendName]
	if lim.MaxBytes <= 0 {
		return
	}
	l := lockOf(&s.room, backendName)
	l.Lock()
	defer l.Unlock()
	for {
		var total int64
		all := s.loaded(backendName, nil)
		for _, e := range all {
			e.mu.Lock()
			total += e.bytes
			e.mu.Unlock()
		}
		if total <= lim.MaxBytes {
			return
		}
		var candidates []*entry
		for _, e := range all {
			if e != keep {
				candidates = append(candidates, e)
			}
		}
		victim := idle(candidates)
		if victim == nil {
			s.log.Warn("loaded models are over the byte limit and all are in use", "backend", backendName, "bytes", total, "limit", lim.MaxBytes)
			return
		}
		s.log.Info("unloading the least recently used model: over the byte limit", "model", victim.src.Descriptor.Name, "bytes", total, "limit", lim.MaxBytes)
		s.unloadEntry(ctx, victim, StateUnloaded)
	}
}

// idle returns the first entry (least recently used) with no request and
// no load running.
func idle(es []*entry) *entry {
	for _, e := range es {
		e.mu.Lock()
		busy := len(e.sem) > 0 || e.loading != nil
		e.mu.Unlock()
		if !busy {
			return e
		}
	}
	return nil
}

// Run unloads models unused for longer than KeepAlive until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	if s.opts.KeepAlive <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(min(s.opts.KeepAlive/4, 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, e := range s.entries() {
			e.mu.Lock()
			last := e.lastUsed
			if e.loadedAt.After(last) {
				last = e.loadedAt
			}
			stale := e.handle != "" && e.loading == nil && len(e.sem) == 0 && time.Since(last) > s.opts.KeepAlive
			e.mu.Unlock()
			if stale {
				s.log.Info("unloading an idle model", "model", e.src.Descriptor.Name, "keep_alive", s.opts.KeepAlive)
				s.unloadEntry(ctx, e, StateUnloaded)
			}
		}
	}
}
