package onnx

import (
	"context"
	"fmt"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/plugins/internal/imaging"
	"github.com/azaion/edge/plugins/internal/video"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

// DetectVideo decodes a video file or stream with the shared video pipeline
// (plugins/internal/video) and runs the model's frames through the same
// queue and batching as Detect.
func (b *Backend) DetectVideo(ctx context.Context, handle string, req backend.VideoRequest, emit func(backend.VideoEvent) error) error {
	m, err := b.model(handle)
	if err != nil {
		return err
	}
	if req.Params.Params, err = checkParams(req.Params.Params); err != nil {
		return err
	}
	m.requests.Add(1)
	src := videosrc.Redact(req.Source)
	start := time.Now()
	b.log.Debug("video started", "handle", handle, "source", src, "every", req.Every, "live", req.Live)
	err = video.Run(ctx, frameDetector{m}, req, emit)
	if err != nil {
		m.errors.Add(1)
		b.log.Debug("video stopped", "handle", handle, "source", src, "took", time.Since(start), "error", videosrc.Scrub(err.Error(), req.Source))
	} else {
		b.log.Debug("video done", "handle", handle, "source", src, "took", time.Since(start))
	}
	return err
}

// frameDetector runs decoded frames through a loaded model's runner.
type frameDetector struct{ m *loaded }

var _ video.Detector = frameDetector{}

func (d frameDetector) MaxBatch() int    { return d.m.maxBatch }
func (d frameDetector) Labels() []string { return d.m.desc.Classes }

// Prepare letterboxes the frame into a pooled input tensor.
func (d frameDetector) Prepare(frame gocv.Mat, p yolo.Params) (video.Pending, error) {
	if frame.Type() != gocv.MatTypeCV8UC3 {
		return nil, fmt.Errorf("onnx: frame has OpenCV type %v, want 8-bit BGR", frame.Type())
	}
	t, err := d.m.pool.get()
	if err != nil {
		return nil, err
	}
	res := &backend.ImageResult{Width: frame.Cols(), Height: frame.Rows()}
	t0 := time.Now()
	lb, err := imaging.LetterboxMat(t.GetData(), frame, d.m.w, d.m.h, d.m.bgr)
	if err != nil {
		d.m.pool.put(t)
		return nil, fmt.Errorf("onnx: %w", err)
	}
	res.Timings.Preprocess = time.Since(t0)
	return &pendingFrame{m: d.m, r: &request{tensor: t, lb: lb, params: p, res: res, arrived: t0, done: make(chan struct{})}}, nil
}

// Queue hands the frames to the runner together: until the last is in,
// the runner waits for them (they are microseconds away), so that they run
// in one batch.
func (d frameDetector) Queue(ctx context.Context, ps []video.Pending) error {
	d.m.queueing.Add(int64(len(ps)))
	for i, p := range ps {
		pf := p.(*pendingFrame)
		err := d.m.enqueue(ctx, pf.r)
		d.m.queueing.Add(-1)
		if err != nil {
			pf.released = true // enqueue returned the tensor to the pool
			d.m.queueing.Add(-int64(len(ps) - i - 1))
			return err
		}
		pf.queued = true
	}
	return nil
}

// pendingFrame is a prepared frame, in the runner's queue once queued.
type pendingFrame struct {
	m        *loaded
	r        *request
	queued   bool
	released bool
}

func (p *pendingFrame) Wait(ctx context.Context) (backend.ImageResult, error) {
	if !p.queued {
		if !p.released {
			p.released = true
			p.m.pool.put(p.r.tensor)
		}
		return backend.ImageResult{}, fmt.Errorf("onnx: frame was never queued")
	}
	// Unlike Detect, a cancelled video does not wait for a batch that has
	// taken its frame: the runner returns the frame's tensor to the pool
	// when the batch is done. A frame still queued is withdrawn.
	select {
	case <-p.r.done:
	case <-ctx.Done():
		if p.r.state.CompareAndSwap(stateQueued, stateCancelled) {
			p.m.pool.put(p.r.tensor)
		}
		return backend.ImageResult{}, ctx.Err()
	case <-p.m.done:
		if p.r.state.CompareAndSwap(stateQueued, stateCancelled) {
			p.m.pool.put(p.r.tensor)
			return backend.ImageResult{}, fmt.Errorf("onnx: model %s: %w: %w", p.m.handle, errUnloaded, backend.ErrUnknownHandle)
		}
		<-p.r.done
	}
	if p.r.err != nil {
		return backend.ImageResult{}, p.r.err
	}
	return *p.r.res, nil
}
