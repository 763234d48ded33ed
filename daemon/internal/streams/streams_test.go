package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

const secretURL = "rtsp://cam:hunter2@10.0.0.5/live"

// scriptedDetector plays one script per DetectVideo call.
type scriptedDetector struct {
	mu      sync.Mutex
	scripts []func(ctx context.Context, req backend.VideoRequest, emit func(sched.ModelInfo, backend.VideoEvent) error) error
	calls   []time.Time
}

func (d *scriptedDetector) DetectVideo(ctx context.Context, name string, req backend.VideoRequest, emit func(sched.ModelInfo, backend.VideoEvent) error) error {
	d.mu.Lock()
	d.calls = append(d.calls, time.Now())
	var s func(context.Context, backend.VideoRequest, func(sched.ModelInfo, backend.VideoEvent) error) error
	if len(d.scripts) > 0 {
		s, d.scripts = d.scripts[0], d.scripts[1:]
	}
	d.mu.Unlock()
	if s == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return s(ctx, req, emit)
}

var mi = sched.ModelInfo{Name: "m", Descriptor: model.Descriptor{Classes: []string{"person", "bus"}}}

func frames(n int, from int64) func(context.Context, backend.VideoRequest, func(sched.ModelInfo, backend.VideoEvent) error) error {
	return func(ctx context.Context, req backend.VideoRequest, emit func(sched.ModelInfo, backend.VideoEvent) error) error {
		if !req.Live || req.Source != secretURL {
			return fmt.Errorf("request %+v: want live on the session's own URL", req)
		}
		emit(mi, backend.VideoEvent{Info: &backend.VideoInfo{Width: 640, Height: 360, FPS: 30}})
		for i := range int64(n) {
			time.Sleep(200 * time.Microsecond) // a watcher that reads keeps up
			emit(mi, backend.VideoEvent{Frame: &backend.FrameResult{Frame: from + i, Time: time.Now(),
				Result: backend.ImageResult{Width: 640, Height: 360, Detections: []yolo.Detection{{ClassID: 1, Score: 0.9}}}}})
		}
		emit(mi, backend.VideoEvent{Progress: &backend.VideoProgress{Decoded: int64(2 * n), Processed: int64(n), Dropped: 1}})
		return fmt.Errorf("read %s: connection reset", secretURL)
	}
}

func TestSession(t *testing.T) {
	det := &scriptedDetector{}
	det.scripts = append(det.scripts,
		frames(200, 0), // more than a watcher buffers
		func(context.Context, backend.VideoRequest, func(sched.ModelInfo, backend.VideoEvent) error) error {
			return fmt.Errorf("%w: cannot open %s", backend.ErrBadSource, secretURL)
		},
		func(ctx context.Context, req backend.VideoRequest, emit func(sched.ModelInfo, backend.VideoEvent) error) error {
			emit(mi, backend.VideoEvent{Info: &backend.VideoInfo{Width: 640, Height: 360}})
			emit(mi, backend.VideoEvent{Frame: &backend.FrameResult{Frame: 7, Time: time.Now()}})
			<-ctx.Done()
			return ctx.Err()
		})
	m := New(Options{Detector: det, MaxSessions: 2, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 40 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	if _, err := m.Add(Spec{ID: "a", Source: videosrc.Secret(secretURL), Model: "m"}, "api"); err != nil {
		t.Fatal(err)
	}
	s, _ := m.session("a")
	// A watcher that reads, and one that never does.
	ch, stop := s.watch()
	defer stop()
	_, stopSlow := s.watch()
	defer stopSlow()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	var got []api.StreamFrame
	var states []string
	deadline := time.After(10 * time.Second)
	for len(got) < 201 {
		select {
		case ev := <-ch:
			if ev.frame != nil {
				got = append(got, *ev.frame)
			} else {
				states = append(states, ev.state.State)
			}
		case <-deadline:
			t.Fatalf("%d frames, states %v", len(got), states)
		}
	}
	if got[200].Frame != 7 || got[0].Detections[0].Label != "bus" || got[0].Stream != "a" {
		t.Fatalf("frames %+v ... %+v", got[0], got[200])
	}
	st, _ := m.Get("a")
	if st.State != api.StreamRunning || st.Reconnects != 2 || st.FramesProcessed != 201 || st.FramesDropped != 1 || st.FramesDecoded != 400 {
		t.Fatalf("stream %+v: want running after 2 reconnects, 201 processed", st)
	}
	if !strings.Contains(st.LastError, "cannot open") || strings.Contains(st.LastError, "hunter2") || strings.Contains(st.Source, "hunter2") {
		t.Fatalf("last error %q, source %q: want the open error, no password", st.LastError, st.Source)
	}
	want := []string{api.StreamRunning, api.StreamConnecting, api.StreamConnecting, api.StreamRunning}
	if strings.Join(states, ",") != strings.Join(want, ",") {
		t.Errorf("state events %v, want %v", states, want)
	}
	det.mu.Lock()
	if gap := det.calls[2].Sub(det.calls[1]); gap < 20*time.Millisecond {
		t.Errorf("reconnected after %s, want the backoff of at least 20ms", gap)
	}
	det.mu.Unlock()

	if _, err := m.Add(Spec{ID: "a", Source: "rtsp://h/x"}, "api"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate id: %v", err)
	}
	if _, err := m.Add(Spec{Source: "http://h/x"}, "api"); !errors.Is(err, ErrBad) {
		t.Errorf("bad scheme: %v", err)
	}
	if _, err := m.Add(Spec{Source: "rtsp://h/x", Every: 5000}, "api"); !errors.Is(err, ErrBad) {
		t.Errorf("bad every: %v", err)
	}
	b, err := m.Add(Spec{Source: "rtsp://h/y"}, "api")
	if err != nil || !strings.HasPrefix(b.ID, "s-") || b.Every != 4 {
		t.Fatalf("generated id, default every: %+v %v", b, err)
	}
	if _, err := m.Add(Spec{Source: "rtsp://h/z"}, "api"); !errors.Is(err, ErrTooMany) {
		t.Errorf("third session of 2: %v", err)
	}

	// Remove stops the session and ends its watchers.
	if err := m.Remove("a"); err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.frame != nil {
			t.Fatalf("frame after removal: %+v", ev.frame)
		}
	}
	if err := m.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
