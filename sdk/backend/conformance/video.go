package conformance

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/internal/videotest"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// videoRun collects the events of one DetectVideo call.
type videoRun struct {
	mu      sync.Mutex
	info    *backend.VideoInfo
	frames  []backend.FrameResult
	prog    []backend.VideoProgress
	summary *backend.VideoSummary
	order   []string
	arrived []time.Time
}

func (v *videoRun) emit(ev backend.VideoEvent) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case ev.Info != nil:
		v.info = ev.Info
		v.order = append(v.order, "info")
	case ev.Frame != nil:
		v.frames = append(v.frames, *ev.Frame)
		v.arrived = append(v.arrived, time.Now())
		v.order = append(v.order, "frame")
	case ev.Progress != nil:
		v.prog = append(v.prog, *ev.Progress)
	case ev.Summary != nil:
		v.summary = ev.Summary
		v.order = append(v.order, "summary")
	}
	return nil
}

func detectVideo(t *testing.T, b backend.Backend, handle string, req backend.VideoRequest) (*videoRun, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v := &videoRun{}
	err := b.DetectVideo(ctx, handle, req, v.emit)
	return v, err
}

// runVideo is the DetectVideo part of the suite.
func runVideo(t *testing.T, o Options) {
	clip := videotest.Make(t, videotest.Clip{}) // 640x360, 24 frames, H.264
	vparams := params
	vparams.MaxPixels = 0

	t.Run("Video/File", func(t *testing.T) {
		res := load(t, o, "yolo11n_dequant_fp32.onnx", "vdyn")
		const every = 3
		v, err := detectVideo(t, o.Backend, res.Handle, backend.VideoRequest{Source: clip, Every: every, Params: vparams})
		if err != nil {
			t.Fatal(err)
		}
		if v.info == nil || v.info.Width != 640 || v.info.Height != 360 || v.info.Frames != 24 || v.info.ToDecode != 24 {
			t.Fatalf("info %+v: want 640x360 and 24 frames", v.info)
		}
		if v.order[0] != "info" || v.order[len(v.order)-1] != "summary" {
			t.Fatalf("event order %v: want info first, summary last", v.order)
		}
		if len(v.frames) != 8 {
			t.Fatalf("%d frame results for 24 frames at every %d, want 8", len(v.frames), every)
		}
		for i, f := range v.frames {
			if f.Frame != int64(i*every) || f.Result.Width != 640 || f.Result.Height != 360 {
				t.Fatalf("result %d is frame %d (%dx%d), want frame %d of 640x360", i, f.Frame, f.Result.Width, f.Result.Height, i*every)
			}
			if want := time.Duration(float64(f.Frame) / 30 * float64(time.Second)); absDur(f.PTS-want) > 2*time.Millisecond {
				t.Errorf("frame %d pts %s, want %s", f.Frame, f.PTS, want)
			}
		}
		s := v.summary
		if s.Decoded != 24 || s.Processed != 8 || s.Dropped != 0 || s.Err != "" {
			t.Fatalf("summary %+v: want 24 decoded, 8 processed, no error", s)
		}
		if s.MaxBatch != res.MaxBatch {
			t.Errorf("largest batch %d, want the model's %d: frames are not batched", s.MaxBatch, res.MaxBatch)
		}
		// The detections of a frame equal those of Detect on the same frame
		// extracted by ffmpeg.
		for _, n := range []int{0, 9, 21} {
			img := videotest.Extract(t, clip, n)
			out, err := o.Backend.Detect(context.Background(), res.Handle, [][]byte{img}, params)
			if err != nil || out[0].Err != nil {
				t.Fatalf("detect frame %d as an image: %v %+v", n, err, out)
			}
			if len(out[0].Detections) == 0 {
				t.Fatalf("frame %d: no detections at all: a useless comparison", n)
			}
			if err := yolotest.ComparePair(v.frames[n/every].Result.Detections, out[0].Detections); err != nil {
				t.Errorf("frame %d: video vs image: %v", n, err)
			}
		}
	})

	t.Run("Video/StartDuration", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vsd")
		v, err := detectVideo(t, o.Backend, res.Handle, backend.VideoRequest{Source: clip, Every: 4, Params: vparams,
			Start: 200 * time.Millisecond, Duration: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if v.info.FirstFrame != 6 || v.info.ToDecode != 9 {
			t.Fatalf("info %+v: want frames 6..14", v.info)
		}
		var got []int64
		for _, f := range v.frames {
			got = append(got, f.Frame)
		}
		if len(got) != 3 || got[0] != 6 || got[1] != 10 || got[2] != 14 || v.summary.Decoded != 9 {
			t.Fatalf("frames %v, summary %+v: want frames 6, 10, 14 of 9 decoded", got, v.summary)
		}
	})

	t.Run("Video/Annotate", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vann")
		out := filepath.Join(t.TempDir(), "annotated.mp4")
		v, err := detectVideo(t, o.Backend, res.Handle, backend.VideoRequest{Source: clip, Every: 5, Params: vparams, Annotate: out})
		if err != nil {
			t.Fatal(err)
		}
		if v.summary.Written != 24 || len(v.frames) != 5 {
			t.Fatalf("summary %+v with %d results: want 24 frames written, 5 processed", v.summary, len(v.frames))
		}
		st := videotest.Probe(t, out)
		if st.Frames != 24 || st.Width != 640 || st.Height != 360 || st.Codec != "mpeg4" {
			t.Fatalf("annotated video %+v: want 24 frames of 640x360 in MPEG-4", st)
		}
	})

	t.Run("Video/Truncated", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vtr")
		v, err := detectVideo(t, o.Backend, res.Handle, backend.VideoRequest{Source: videotest.Truncate(t, clip, 0.5), Every: 2, Params: vparams})
		if err != nil {
			t.Fatal(err)
		}
		s := v.summary
		if s.Decoded == 0 || s.Decoded >= 24 || !strings.Contains(s.Err, "truncated") {
			t.Fatalf("summary %+v: want some of the 24 frames decoded and an error saying the file is truncated", s)
		}
		if want := (s.Decoded + 1) / 2; int64(len(v.frames)) != want || s.Processed != want {
			t.Fatalf("%d results for %d decoded frames at every 2, want %d", len(v.frames), s.Decoded, want)
		}
	})

	t.Run("Video/BadSource", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vbad")
		dir := t.TempDir()
		text := filepath.Join(dir, "notes.mp4")
		if err := os.WriteFile(text, []byte("this is not a video\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, src, want string }{
			{"text", text, "not a video"},
			{"codec", videotest.Retag(t, clip, "avc1", "zzzz"), "zzzz"},
			{"missing", filepath.Join(dir, "missing.mp4"), "no such file"},
			{"relative", "clip.mp4", "not absolute"},
			{"scheme", "ftp://example.org/a.mp4", "scheme"},
		} {
			v, err := detectVideo(t, o.Backend, res.Handle, backend.VideoRequest{Source: tc.src, Every: 1, Params: vparams})
			if !errors.Is(err, backend.ErrBadSource) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want ErrBadSource saying %q", tc.name, err, tc.want)
			}
			if len(v.order) != 0 {
				t.Errorf("%s: events %v before the error", tc.name, v.order)
			}
		}
		if err := o.Backend.DetectVideo(context.Background(), "no-such-handle", backend.VideoRequest{Source: clip, Every: 1}, func(backend.VideoEvent) error { return nil }); !errors.Is(err, backend.ErrUnknownHandle) {
			t.Errorf("unknown handle: %v", err)
		}
	})

	t.Run("Video/Cancel", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vc")
		long := videotest.Make(t, videotest.Clip{Frames: 150})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var cancelled time.Time
		frames := 0
		errc := make(chan error, 1)
		go func() {
			errc <- o.Backend.DetectVideo(ctx, res.Handle, backend.VideoRequest{Source: long, Every: 1, Params: vparams}, func(ev backend.VideoEvent) error {
				if ev.Frame != nil {
					if frames++; frames == 2 {
						cancelled = time.Now()
						cancel()
					}
				}
				return nil
			})
		}()
		var err error
		select {
		case err = <-errc:
		case <-time.After(time.Minute):
			t.Fatal("DetectVideo did not return within a minute")
		}
		if took := time.Since(cancelled); !errors.Is(err, context.Canceled) || took > time.Second {
			t.Fatalf("cancelled DetectVideo returned %v after %s, want context.Canceled within 1s", err, took)
		}
		waitVideos(t, o.Backend, cancelled)
		// An emit error stops it too, and is returned.
		stop := errors.New("client went away")
		err = o.Backend.DetectVideo(context.Background(), res.Handle, backend.VideoRequest{Source: long, Every: 1, Params: vparams}, func(ev backend.VideoEvent) error {
			if ev.Frame != nil {
				return stop
			}
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), stop.Error()) {
			t.Fatalf("emit error: DetectVideo returned %v, want %v", err, stop)
		}
		waitVideos(t, o.Backend, time.Now())
	})

	t.Run("Video/Live", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "vlive")
		// 120 frames per second: more than the model runs here, so frames
		// must be dropped to stay real time.
		const fps = 120
		srv := videotest.StartRTSP(t, videotest.Make(t, videotest.Clip{Format: "h264", Frames: 96, FPS: fps}), fps, "", "")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		v := &videoRun{}
		errc := make(chan error, 1)
		go func() {
			errc <- o.Backend.DetectVideo(ctx, res.Handle, backend.VideoRequest{Source: srv.URL(false), Every: 1, Params: vparams, Live: true}, v.emit)
		}()
		deadline := time.After(30 * time.Second)
		for {
			v.mu.Lock()
			n, p := len(v.frames), len(v.prog)
			v.mu.Unlock()
			if n >= 10 && p >= 3 {
				break
			}
			select {
			case err := <-errc:
				t.Fatalf("live DetectVideo ended: %v (%d frames)", err, n)
			case <-deadline:
				t.Fatalf("live stream: %d results and %d progress reports within 30s", n, p)
			case <-time.After(50 * time.Millisecond):
			}
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("live DetectVideo after cancel: %v", err)
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		last := v.prog[len(v.prog)-1]
		t.Logf("live stream at %d fps: %+v", fps, last)
		// The decoder keeps up with the stream while the model cannot: the
		// progress reports come every second.
		first := v.prog[0]
		if rate := float64(last.Decoded-first.Decoded) / float64(len(v.prog)-1); rate < fps/2 {
			t.Errorf("decoded %.0f frames a second of a %d fps stream: decoding waits for the model", rate, fps)
		}
		if last.Dropped == 0 || last.Processed >= last.Decoded {
			t.Errorf("progress %+v: want frames dropped at %d fps rather than queued", last, fps)
		}
		if inflight := last.Decoded - last.Processed - last.Dropped; inflight < 0 || inflight > int64(2*res.MaxBatch) {
			t.Errorf("progress %+v: %d frames unaccounted for, want at most the %d in flight", last, inflight, 2*res.MaxBatch)
		}
		// Real time: a result arrives soon after its frame was decoded.
		for i, f := range v.frames[len(v.frames)/2:] {
			if lag := v.arrived[len(v.frames)/2+i].Sub(f.Time); lag > time.Second {
				t.Errorf("frame %d: result %s after its decoding, want under 1s", f.Frame, lag)
			}
		}
	})
}

// waitVideos fails unless the backend reports no video being decoded within
// a second of since.
func waitVideos(t *testing.T, b backend.Backend, since time.Time) {
	t.Helper()
	for {
		st, err := b.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Videos == 0 {
			return
		}
		if time.Since(since) > time.Second {
			t.Fatalf("%d videos still decoding %s after the stop", st.Videos, time.Since(since))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func absDur(d time.Duration) time.Duration { return time.Duration(math.Abs(float64(d))) }
