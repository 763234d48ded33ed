package sched

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// serialBackend runs one detection at a time for service each (as a
// runtime with all cores busy does) and loads in loadTime; it records the
// handles it holds and the order of loads.
type serialBackend struct {
	service  time.Duration
	loadTime time.Duration

	run    chan struct{} // one detection at a time, first come first served
	mu     sync.Mutex
	n      int
	loaded map[string]string // handle -> model name@data
	order  []string
	peak   int // most loads at once
	cur    int
}

func newSerial(service, load time.Duration) *serialBackend {
	return &serialBackend{service: service, loadTime: load, loaded: map[string]string{}, run: make(chan struct{}, 1)}
}

func (b *serialBackend) Info(context.Context) (*backend.Info, error) { return &backend.Info{}, nil }
func (b *serialBackend) Load(ctx context.Context, d model.Descriptor, data []byte) (*backend.LoadResult, error) {
	b.mu.Lock()
	b.cur++
	b.peak = max(b.peak, b.cur)
	b.order = append(b.order, d.Name)
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.cur--; b.mu.Unlock() }()
	select {
	case <-time.After(b.loadTime):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if string(data) == "bad" {
		return nil, fmt.Errorf("%w: not a model", backend.ErrBadModel)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	h := fmt.Sprintf("%s#%d", d.Name, b.n)
	b.loaded[h] = d.Name + "@" + string(data)
	return &backend.LoadResult{Handle: h, Descriptor: d, MaxBatch: 1, DeviceBytes: int64(len(data))}, nil
}
func (b *serialBackend) Detect(ctx context.Context, h string, imgs [][]byte, _ backend.DetectParams) ([]backend.ImageResult, error) {
	b.mu.Lock()
	_, ok := b.loaded[h]
	b.mu.Unlock()
	if !ok {
		return nil, backend.ErrUnknownHandle
	}
	b.run <- struct{}{}
	defer func() { <-b.run }()
	time.Sleep(b.service)
	return make([]backend.ImageResult, len(imgs)), nil
}
func (b *serialBackend) Unload(_ context.Context, h string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.loaded, h)
	return nil
}

// DetectVideo sends a frame every few milliseconds until ctx ends or its
// model is unloaded.
func (b *serialBackend) DetectVideo(ctx context.Context, h string, _ backend.VideoRequest, emit func(backend.VideoEvent) error) error {
	if err := emit(backend.VideoEvent{Info: &backend.VideoInfo{Width: 2, Height: 2}}); err != nil {
		return err
	}
	for i := int64(0); ; i++ {
		b.mu.Lock()
		_, ok := b.loaded[h]
		b.mu.Unlock()
		if !ok {
			return fmt.Errorf("video: %w", backend.ErrUnknownHandle)
		}
		if err := emit(backend.VideoEvent{Frame: &backend.FrameResult{Frame: i}}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
func (b *serialBackend) Health(context.Context) error                  { return nil }
func (b *serialBackend) Stats(context.Context) (*backend.Stats, error) { return &backend.Stats{}, nil }

// held returns what the backend holds, sorted ("name@data").
func (b *serialBackend) held() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, v := range b.loaded {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

type serialBackends struct{ b *serialBackend }

func (s serialBackends) Backend(string) (backend.Backend, error) { return s.b, nil }
func (s serialBackends) Failed(string)                           {}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func states(s *Scheduler) map[string]State {
	out := map[string]State{}
	for _, m := range s.Models() {
		out[m.Name] = m.State
	}
	return out
}

// TestOverload: 4x the backend's capacity, open loop, for 20 s: requests
// beyond the expected wait limit get 429 at once with Retry-After, and those
// served wait no longer than the limit plus two service times.
func TestOverload(t *testing.T) {
	// Times large enough that a busy machine's scheduling delays (tens of
	// milliseconds) do not decide the outcome.
	const service = 150 * time.Millisecond
	const maxWait = time.Second
	b := newSerial(service, 0)
	s := New(serialBackends{b}, Options{QueueSize: 1000, MaxQueueWait: maxWait, Log: quiet()})
	if err := s.Add(src("m", "ok")); err != nil {
		t.Fatal(err)
	}
	s.LoadAll(context.Background(), "fake", b)
	var (
		mu       sync.Mutex
		lat      []time.Duration
		refused  int
		noRetry  int
		slowFail time.Duration
		peak     atomic.Int64
		cur      atomic.Int64
	)
	var wg sync.WaitGroup
	interval := service / 4
	end := time.Now().Add(20 * time.Second)
	for tick := time.NewTicker(interval); time.Now().Before(end); <-tick.C {
		wg.Go(func() {
			peak.Store(max(peak.Load(), cur.Add(1)))
			defer cur.Add(-1)
			start := time.Now()
			_, err := s.Detect(context.Background(), "m", [][]byte{{1}}, backend.DetectParams{})
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			var re *RetryError
			switch {
			case err == nil:
				lat = append(lat, d)
			case errors.Is(err, ErrQueueFull) && errors.As(err, &re):
				refused++
				if re.RetryAfter() < time.Second {
					noRetry++
				}
				slowFail = max(slowFail, d)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("served %d (p50 %s, p99 %s), refused %d, peak in flight %d", len(lat), p50, p99, refused, peak.Load())
	if p99 > maxWait+2*service {
		t.Errorf("p99 of the served requests %s: over the %s limit plus two service times", p99, maxWait)
	}
	if refused < len(lat) || noRetry > 0 || slowFail > 100*time.Millisecond {
		t.Errorf("refused %d (without Retry-After %d), slowest refusal %s: want most refused at once", refused, noRetry, slowFail)
	}
	if float64(len(lat)) < 0.8*float64(20*time.Second/service) {
		t.Errorf("served %d: the backend was left idle", len(lat))
	}
	if limit := int64(maxWait/service) + 4 + 8; peak.Load() > limit*2 {
		t.Errorf("peak in flight %d: requests pile up", peak.Load())
	}
}

// TestModelLimits: with room for two models, asking for a third unloads the
// least recently used idle one; an unloaded model loads when asked for;
// explicit unload and load; idle models go after the keep-alive.
func TestModelLimits(t *testing.T) {
	b := newSerial(time.Millisecond, 10*time.Millisecond)
	s := New(serialBackends{b}, Options{Limits: map[string]Limits{"fake": {MaxModels: 2}}, KeepAlive: 400 * time.Millisecond, Log: quiet()})
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if err := s.Add(src(n, "ok")); err != nil {
			t.Fatal(err)
		}
	}
	s.LoadAll(ctx, "fake", b)
	st := states(s)
	if len(b.held()) != 2 || st["c"] != StateUnloaded && st["a"] != StateUnloaded && st["b"] != StateUnloaded {
		t.Fatalf("after start: %v, backend holds %v", st, b.held())
	}
	if ok, why := s.Ready(); !ok {
		t.Fatalf("not ready with a model unloaded for room: %v", why)
	}
	detect := func(n string) {
		t.Helper()
		if _, err := s.Detect(ctx, n, [][]byte{{1}}, backend.DetectParams{}); err != nil {
			t.Fatalf("detect %s: %v", n, err)
		}
	}
	detect("a")
	detect("b")
	detect("c") // a is the least recently used
	if st := states(s); st["a"] != StateUnloaded || st["b"] != StateReady || st["c"] != StateReady {
		t.Fatalf("after using a, b, c: %v", st)
	}
	if got := b.held(); !slices.Equal(got, []string{"b@ok", "c@ok"}) {
		t.Fatalf("backend holds %v", got)
	}
	if err := s.Unload(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st := states(s); st["a"] != StateReady || st["c"] != StateUnloaded {
		t.Fatalf("after unload c, load a: %v", st)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Run(runCtx)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.held()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := b.held(); len(got) != 0 {
		t.Fatalf("idle models still held after the keep-alive: %v (%v)", got, states(s))
	}
	detect("b") // loads again on demand
	for _, m := range s.Models() {
		if m.Name == "b" && (m.State != StateReady || m.Bytes != 2 || m.LastUsed.IsZero()) {
			t.Fatalf("model b: %+v", m)
		}
	}
}

// TestReplace: adding a new version of a serving model never interrupts it:
// requests succeed throughout; a new version that fails to load leaves the
// old one serving; concurrent replacements leave exactly one copy loaded.
func TestReplace(t *testing.T) {
	b := newSerial(2*time.Millisecond, 100*time.Millisecond)
	s := New(serialBackends{b}, Options{Log: quiet()})
	ctx := context.Background()
	if err := s.Add(src("m", "v1")); err != nil {
		t.Fatal(err)
	}
	s.LoadAll(ctx, "fake", b)
	stop := make(chan struct{})
	var failures atomic.Int64
	var served atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Detect(ctx, "m", [][]byte{{1}}, backend.DetectParams{}); err != nil {
					failures.Add(1)
					t.Logf("during the swap: %v", err)
				} else {
					served.Add(1)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Add(src("m", "v2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(src("m", "bad")); err == nil {
		t.Fatal("a model that does not load replaced the serving one")
	}
	var adds sync.WaitGroup
	for _, v := range []string{"v3", "v4"} {
		adds.Go(func() {
			if err := s.Add(src("m", v)); err != nil {
				t.Error(err)
			}
		})
	}
	adds.Wait()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() > 0 || served.Load() == 0 {
		t.Fatalf("%d requests failed during the swaps (%d served)", failures.Load(), served.Load())
	}
	if got := b.held(); len(got) != 1 || (got[0] != "m@v3" && got[0] != "m@v4") {
		t.Fatalf("backend holds %v: want exactly the last version", got)
	}
}

// TestReload: after a relaunch the models load in parallel, the most
// recently used first; a load is not tied to the caller that asked for it.
func TestReload(t *testing.T) {
	b := newSerial(time.Millisecond, 150*time.Millisecond)
	s := New(serialBackends{b}, Options{LoadParallel: 3, Log: quiet()})
	ctx := context.Background()
	names := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	for _, n := range names {
		if err := s.Add(src(n, "ok")); err != nil {
			t.Fatal(err)
		}
	}
	s.LoadAll(ctx, "fake", b)
	if _, err := s.Detect(ctx, "m5", [][]byte{{1}}, backend.DetectParams{}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.loaded, b.order, b.peak = map[string]string{}, nil, 0 // the plugin died
	b.mu.Unlock()
	start := time.Now()
	s.LoadAll(ctx, "fake", b)
	took := time.Since(start)
	if b.order[0] != "m5" || b.peak != 3 || took > 4*150*time.Millisecond {
		t.Fatalf("reload order %v, %d at once, took %s: want m5 first, 3 at once, about 2 x 150ms", b.order, b.peak, took)
	}
	if err := s.Unload(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Load(gone, "m1"); err == nil {
		t.Fatal("load with a cancelled caller returned at once without error")
	}
	deadline := time.Now().Add(3 * time.Second)
	for states(s)["m1"] != StateReady && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := states(s)["m1"]; st != StateReady {
		t.Fatalf("model m1 is %s after its caller went away: the load must go on", st)
	}
}

// TestVideoHoldsModel: a video loads its model on demand and keeps it in
// use while it runs (not unloaded as idle, not unloaded to make room), and
// it does not hold up the model's replacement, which ends it with
// ErrUnavailable.
func TestVideoHoldsModel(t *testing.T) {
	b := newSerial(time.Millisecond, 10*time.Millisecond)
	s := New(serialBackends{b}, Options{Limits: map[string]Limits{"fake": {MaxModels: 1}}, KeepAlive: 200 * time.Millisecond, Log: quiet()})
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if err := s.Add(src(n, "ok")); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go s.Run(runCtx)
	vctx, stopVideo := context.WithCancel(ctx)
	frames := make(chan int64, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.DetectVideo(vctx, "a", backend.VideoRequest{}, func(_ ModelInfo, ev backend.VideoEvent) error {
			if ev.Frame != nil {
				frames <- ev.Frame.Frame
			}
			return nil
		})
	}()
	select {
	case <-frames:
	case err := <-done:
		t.Fatalf("video ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no frames")
	}
	time.Sleep(600 * time.Millisecond) // three keep-alives
	if st := states(s); st["a"] != StateReady {
		t.Fatalf("model a under a video is %s after the keep-alive", st["a"])
	}
	if _, err := s.Detect(ctx, "b", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("detect b with a in use by a video and room for one model: %v, want ErrUnavailable", err)
	}
	stopVideo()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled video: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for states(s)["a"] != StateUnloaded && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := states(s); st["a"] != StateUnloaded {
		t.Fatalf("model a after its video ended and the keep-alive passed: %v", st)
	}

	// A replacement goes through under a running video and ends it.
	go func() {
		done <- s.DetectVideo(ctx, "b", backend.VideoRequest{}, func(ModelInfo, backend.VideoEvent) error { return nil })
	}()
	deadline = time.Now().Add(5 * time.Second)
	for states(s)["b"] != StateReady && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	replaced := make(chan error, 1)
	go func() { replaced <- s.Add(src("b", "v2")) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("video under a replaced model: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replacement waited for the video")
	}
	if err := <-replaced; err != nil {
		t.Fatal(err)
	}
}
