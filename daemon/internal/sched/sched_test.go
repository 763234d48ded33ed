package sched

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// blockingBackend is an in-memory backend whose Detect blocks until release
// is closed; it counts loads. It stands in for a plugin to test admission
// and routing (the real plugin is exercised by daemon's end-to-end tests).
type blockingBackend struct {
	mu      sync.Mutex
	loads   int
	handles map[string]bool
	release chan struct{}
	down    error
}

func (b *blockingBackend) Info(context.Context) (*backend.Info, error) { return &backend.Info{}, nil }
func (b *blockingBackend) Load(_ context.Context, d model.Descriptor, data []byte) (*backend.LoadResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if string(data) == "bad" {
		return nil, backend.ErrBadModel
	}
	b.loads++
	h := d.Name + "#" + string(rune('0'+b.loads))
	b.handles[h] = true
	return &backend.LoadResult{Handle: h, Descriptor: d, Device: "cpu", MaxBatch: 1}, nil
}
func (b *blockingBackend) Detect(ctx context.Context, h string, imgs [][]byte, _ backend.DetectParams) ([]backend.ImageResult, error) {
	b.mu.Lock()
	ok := b.handles[h]
	b.mu.Unlock()
	if !ok {
		return nil, backend.ErrUnknownHandle
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return make([]backend.ImageResult, len(imgs)), nil
}
func (b *blockingBackend) Unload(_ context.Context, h string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.handles, h)
	return nil
}
func (b *blockingBackend) Health(context.Context) error { return nil }
func (b *blockingBackend) DetectVideo(context.Context, string, backend.VideoRequest, func(backend.VideoEvent) error) error {
	return backend.ErrUnsupported
}
func (b *blockingBackend) Stats(context.Context) (*backend.Stats, error) {
	return &backend.Stats{}, nil
}

type oneBackend struct{ b *blockingBackend }

func (o oneBackend) Backend(name string) (backend.Backend, error) {
	if o.b.down != nil {
		return nil, o.b.down
	}
	return o.b, nil
}
func (o oneBackend) Failed(string) {}

func src(name, data string) Source {
	return Source{Descriptor: model.Descriptor{Name: name}, Backend: "fake", Origin: "test",
		Open: func(context.Context) ([]byte, error) { return []byte(data), nil }}
}

func TestScheduler(t *testing.T) {
	fb := &blockingBackend{handles: map[string]bool{}, release: make(chan struct{})}
	s := New(oneBackend{fb}, Options{QueueSize: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	if _, err := s.Detect(ctx, "", nil, backend.DetectParams{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no models: %v", err)
	}
	for _, m := range []Source{src("a", "ok"), src("b", "ok"), src("broken", "bad")} {
		if err := s.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(src("../x", "ok")); err == nil {
		t.Fatal("a model name with a path in it was accepted")
	}
	if ok, _ := s.Ready(); ok {
		t.Fatal("ready before loading")
	}
	s.LoadAll(ctx, "fake", fb)
	ok, why := s.Ready()
	if ok || len(why) != 1 || !strings.Contains(why[0], "broken") {
		t.Fatalf("ready %v %v: want not ready because of the broken model", ok, why)
	}
	if _, err := s.Detect(ctx, "broken", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bad model") {
		t.Fatalf("detect on a failed model: %v", err)
	}
	if _, err := s.Detect(ctx, "", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrNoModel) {
		t.Fatalf("no model named among three: %v", err)
	}
	if _, err := s.Detect(ctx, "zzz", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("unknown model: %v", err)
	}
	if _, err := s.Detect(ctx, "a:v9", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("unknown version: %v", err)
	}

	// Two requests fill model a's queue; the third fails fast.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := s.Detect(ctx, "a", [][]byte{{1}}, backend.DetectParams{}); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.models["a"].sem) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := s.Detect(ctx, "a", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third request: %v, want ErrQueueFull", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a full queue must fail fast")
	}
	// Another model's queue is separate.
	close(fb.release)
	wg.Wait()
	if _, err := s.Detect(ctx, "b", [][]byte{{1}}, backend.DetectParams{}); err != nil {
		t.Fatal(err)
	}

	// After a relaunch (LoadAll again) old handles are gone and new ones work.
	fb.handles = map[string]bool{}
	s.LoadAll(ctx, "fake", fb)
	if _, err := s.Detect(ctx, "a", [][]byte{{1}}, backend.DetectParams{}); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	// Backend down: 503-class error naming why.
	fb.down = errors.New("plugin is not running: onnx down")
	if _, err := s.Detect(ctx, "a", [][]byte{{1}}, backend.DetectParams{}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "onnx down") {
		t.Fatalf("backend down: %v", err)
	}
	fb.down = nil
	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if len(s.Models()) != 2 {
		t.Fatalf("models after remove: %+v", s.Models())
	}
}
