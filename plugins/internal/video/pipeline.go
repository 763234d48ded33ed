package video

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

// Detector is a loaded model as the video pipeline sees it; each backend
// implements it over its own runtime and batching.
type Detector interface {
	// MaxBatch is the largest batch the model runs frames in.
	MaxBatch() int
	// Labels are the model's class names (for the annotated video).
	Labels() []string
	// Prepare letterboxes an 8-bit BGR frame into the model's input; the
	// frame may be reused as soon as Prepare returns.
	Prepare(frame gocv.Mat, p yolo.Params) (Pending, error)
	// Queue hands prepared frames to the model's runner together, so that
	// they can share a batch.
	Queue(ctx context.Context, ps []Pending) error
}

// Pending is a frame prepared by a Detector.
type Pending interface {
	// Wait returns the frame's result, boxes in frame pixels. Waiting with
	// a cancelled context withdraws a frame that is still queued; waiting
	// for a frame never queued releases it and returns an error.
	Wait(ctx context.Context) (backend.ImageResult, error)
}

// ProgressEvery is how often a live stream reports its counters.
const ProgressEvery = time.Second

var active atomic.Int64

// Active is the number of videos and streams this process decodes now.
func Active() int { return int(active.Load()) }

// processed is a frame handed to the detector, in frame order.
type processed struct {
	frame   Frame
	decode  time.Duration
	pending Pending
}

// annotated is a frame waiting to be drawn and written: the boxes of the
// processed frame use (-1: none yet) go on it.
type annotated struct {
	mat gocv.Mat
	use int64
}

// detections of a processed frame, for the writer.
type detections struct {
	frame int64
	dets  []yolo.Detection
}

// run is one DetectVideo call.
type run struct {
	det    Detector
	req    backend.VideoRequest
	emit   func(backend.VideoEvent) error
	stream bool
	labels []string

	first, end int64 // frames [first, end) of a file; end -1 when unknown
	expected   int64 // frames the file should have from first on (0 unknown)
	depth      int   // processed frames in flight
	// slots bound a live stream's processed frames in flight: read takes
	// one per submitted frame (or drops the frame), collect gives it back.
	slots chan struct{}

	decoded, done, dropped atomic.Int64
	decodeTime             atomic.Int64

	// Collector-owned totals.
	timings  backend.Timings
	maxBatch int

	stopErr string // why decoding ended early (reader-owned until the end)
}

// Run decodes req.Source (a file or a stream URL) with OpenCV and runs det
// on every req.Every-th frame, as backend.Backend.DetectVideo documents:
// decoding, inference (batched by the detector) and, for req.Annotate,
// drawing and encoding overlap; frames in flight are bounded, and a live
// stream drops the frames the model has no room for.
func Run(ctx context.Context, det Detector, req backend.VideoRequest, emit func(backend.VideoEvent) error) error {
	if err := req.Validate(); err != nil {
		return err
	}
	r := &run{det: det, req: req, emit: emit, stream: videosrc.IsStream(req.Source), labels: det.Labels(), end: -1}
	var probe Info
	if !r.stream {
		var err error
		if probe, err = probeFile(req.Source); err != nil {
			return err
		}
	}
	started := time.Now()
	c, err := Open(ctx, req.Source)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", backend.ErrBadSource, err)
	}
	active.Add(1)
	defer active.Add(-1)
	defer c.Close()

	info, err := r.plan(c, probe)
	if err != nil {
		return err
	}
	var wr *Writer
	if req.Annotate != "" {
		if wr, err = NewWriter(req.Annotate, req.AnnotateCodec, info.FPS, info.Width, info.Height, r.labels); err != nil {
			return err
		}
		defer wr.Close()
	}
	if err := emit(backend.VideoEvent{Info: &info}); err != nil {
		return err
	}

	if r.stream {
		r.slots = make(chan struct{}, r.depth)
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) { cancel(err) }
	inflight := make(chan processed, r.depth)
	var frames chan annotated
	var results chan detections
	var free chan gocv.Mat
	if wr != nil {
		q := req.Every*det.MaxBatch() + 1
		frames = make(chan annotated, q)
		results = make(chan detections, r.depth)
		free = make(chan gocv.Mat, q+2)
	}
	var wg sync.WaitGroup
	var writeTime time.Duration
	wg.Go(func() { r.read(ctx, c, inflight, frames, free, fail) })
	wg.Go(func() { r.collect(ctx, inflight, results, fail) })
	if wr != nil {
		wg.Go(func() { writeTime = r.write(ctx, wr, frames, results, free, fail) })
	}
	wg.Wait()
	if free != nil {
		close(free)
		for m := range free {
			m.Close()
		}
	}
	if err := parent.Err(); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	sum := &backend.VideoSummary{
		Decoded: r.decoded.Load(), Processed: r.done.Load(), Dropped: r.dropped.Load(),
		Wall: time.Since(started), Decode: time.Duration(r.decodeTime.Load()), Write: writeTime,
		Timings: r.timings, MaxBatch: r.maxBatch, Err: r.stopErr,
	}
	if wr != nil {
		sum.Written = wr.Frames()
		if err := wr.Close(); err != nil {
			return fmt.Errorf("annotated video: %w", err)
		}
	}
	return emit(backend.VideoEvent{Summary: sum})
}

// probeFile checks a file source and reads its container.
func probeFile(path string) (Info, error) {
	if !filepath.IsAbs(path) {
		return Info{}, fmt.Errorf("%w: the video path %q is not absolute", backend.ErrBadSource, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", backend.ErrBadSource, err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%w: %s is not a regular file", backend.ErrBadSource, path)
	}
	in, err := Probe(path)
	if err != nil {
		return in, fmt.Errorf("%w: %w", backend.ErrBadSource, err)
	}
	return in, nil
}

// plan works out the frames to decode and checks the limits.
func (r *run) plan(c *Capture, probe Info) (backend.VideoInfo, error) {
	req := r.req
	w, h := c.Size()
	fps := probe.FPS
	if fps <= 0 {
		fps = c.FPS()
	}
	info := backend.VideoInfo{Width: w, Height: h, FPS: fps, Frames: probe.Frames, Duration: probe.Duration,
		Codec: probe.Codec, Container: probe.Container, MaxBatch: max(1, r.det.MaxBatch())}
	if w <= 0 || h <= 0 {
		return info, fmt.Errorf("%w: the video has no frame size", backend.ErrBadSource)
	}
	r.depth = 2 * info.MaxBatch
	if r.stream {
		r.depth = info.MaxBatch
		return info, nil
	}
	if (req.Start > 0 || req.Duration > 0) && fps <= 0 {
		return info, fmt.Errorf("%w: the video's frame rate is unknown, so start and duration cannot be used", backend.ErrBadSource)
	}
	r.first = int64(math.Round(req.Start.Seconds() * fps))
	if probe.Frames > 0 && r.first >= probe.Frames {
		return info, fmt.Errorf("%w: start %s is past the end of the video (%d frames, %s)", backend.ErrBadSource, req.Start, probe.Frames, probe.Duration.Round(time.Millisecond))
	}
	if probe.Frames > 0 {
		r.end = probe.Frames
	}
	if req.Duration > 0 {
		end := r.first + max(1, int64(math.Round(req.Duration.Seconds()*fps)))
		if r.end < 0 || end < r.end {
			r.end = end
		}
	}
	if r.end >= 0 {
		info.ToDecode = r.end - r.first
		r.expected = info.ToDecode
	}
	if req.MaxFrames > 0 && info.ToDecode > req.MaxFrames {
		return info, fmt.Errorf("%w: the video has %d frames to decode, over the limit of %d (narrow it with start and duration)", backend.ErrBadSource, info.ToDecode, req.MaxFrames)
	}
	if req.MaxDuration > 0 && fps > 0 && info.ToDecode > 0 {
		if d := time.Duration(float64(info.ToDecode) / fps * float64(time.Second)); d > req.MaxDuration {
			return info, fmt.Errorf("%w: the video part to decode lasts %s, over the limit of %s (narrow it with start and duration)", backend.ErrBadSource, d.Round(time.Millisecond), req.MaxDuration)
		}
	}
	if err := c.SeekFrame(r.first); err != nil {
		return info, fmt.Errorf("%w: %v", backend.ErrBadSource, err)
	}
	info.FirstFrame = r.first
	return info, nil
}

// read decodes frames, prepares the due ones and hands every frame to the
// writer when there is one. A file's due frames are queued for the model a
// group of MaxBatch at a time, so that they run as full batches; a live
// stream's are queued at once (a batch still forms while the model is
// busy). It closes inflight and frames when it stops.
func (r *run) read(ctx context.Context, c *Capture, inflight chan<- processed, frames chan<- annotated, free chan gocv.Mat, fail func(error)) {
	defer close(inflight)
	if frames != nil {
		defer close(frames)
	}
	group := make([]processed, 0, r.det.MaxBatch())
	pend := make([]Pending, 0, r.det.MaxBatch())
	groupSize := max(1, r.det.MaxBatch())
	if r.stream {
		groupSize = 1
	}
	// flush queues the group and hands it to the collector; false when
	// the run is over.
	flush := func() bool {
		if len(group) == 0 {
			return true
		}
		pend = pend[:0]
		for _, p := range group {
			pend = append(pend, p.pending)
		}
		err := r.det.Queue(ctx, pend)
		for i, p := range group {
			if err != nil {
				_, _ = p.pending.Wait(ctx) // releases it
				continue
			}
			select {
			case inflight <- p:
			case <-ctx.Done():
				for _, q := range group[i:] {
					_, _ = q.pending.Wait(ctx)
				}
				group = group[:0]
				return false
			}
		}
		group = group[:0]
		if err != nil {
			fail(err)
			return false
		}
		return true
	}
	defer func() {
		for _, p := range group { // prepared, never queued
			_, _ = p.pending.Wait(ctx)
		}
	}()
	slots := r.slots
	every := int64(r.req.Every)
	scratch := gocv.NewMat()
	defer scratch.Close()
	lastPrepared := int64(-1)
	owed := false // a due frame was dropped: the next frame with room goes
	var sinceLast time.Duration
	maxFrames := r.req.MaxFrames
	for i := int64(0); ; i++ {
		if ctx.Err() != nil {
			return
		}
		if (r.end >= 0 && r.first+i >= r.end) || (!r.stream && maxFrames > 0 && i >= maxFrames) {
			if r.end < 0 || r.first+i < r.end {
				r.stopErr = fmt.Sprintf("stopped at the limit of %d frames", maxFrames)
			}
			flush()
			return
		}
		due := i%every == 0 || owed
		room := true
		if due && slots != nil {
			select {
			case slots <- struct{}{}:
			default:
				room = false
			}
		}
		want := (due && room) || frames != nil
		mat := &scratch
		var fm gocv.Mat
		if frames != nil {
			select {
			case fm = <-free:
			default:
				fm = gocv.NewMat()
			}
			mat = &fm
		}
		t0 := time.Now()
		var f Frame
		var ok bool
		if want {
			f, ok = c.Read(mat)
		} else {
			f, ok = c.Grab()
		}
		dt := time.Since(t0)
		r.decodeTime.Add(int64(dt))
		sinceLast += dt
		if !ok {
			if frames != nil {
				fm.Close()
			}
			if due && room && slots != nil {
				<-slots
			}
			r.ended(i)
			flush()
			return
		}
		r.decoded.Add(1)
		switch {
		case due && room:
			p, err := r.det.Prepare(*mat, r.req.Params.Params)
			if err != nil {
				if frames != nil {
					fm.Close()
				}
				fail(err)
				return
			}
			group = append(group, processed{frame: f, decode: sinceLast, pending: p})
			sinceLast = 0
			lastPrepared = f.Index
			owed = false
			if len(group) >= groupSize && !flush() {
				if frames != nil {
					fm.Close()
				}
				return
			}
		case due:
			r.dropped.Add(1)
			owed = true
		}
		if frames != nil {
			a := annotated{mat: fm, use: lastPrepared}
			select {
			case frames <- a:
				continue
			default:
			}
			// The writer is behind, maybe waiting for a frame of the group:
			// queue the group before waiting for room.
			if !flush() {
				fm.Close()
				return
			}
			select {
			case frames <- a:
			case <-ctx.Done():
				fm.Close()
				return
			}
		}
	}
}

// ended records why reading stopped at the i-th frame to decode.
func (r *run) ended(i int64) {
	switch {
	case r.stream:
		r.stopErr = fmt.Sprintf("the stream ended or stopped answering after %d frames", i)
	case r.expected > 0 && i < r.expected:
		r.stopErr = fmt.Sprintf("decoding stopped at frame %d of %d: the file is truncated or corrupt", r.first+i, r.first+r.expected)
	}
}

// collect waits for the processed frames in order and emits their results;
// on a live stream it also reports progress every ProgressEvery.
func (r *run) collect(ctx context.Context, inflight <-chan processed, results chan<- detections, fail func(error)) {
	if results != nil {
		defer close(results)
	}
	var tick <-chan time.Time
	if r.stream {
		t := time.NewTicker(ProgressEvery)
		defer t.Stop()
		tick = t.C
	}
	failed := false
	for {
		var p processed
		var ok bool
		select {
		case p, ok = <-inflight:
		case <-tick:
			if !failed {
				if err := r.emit(backend.VideoEvent{Progress: &backend.VideoProgress{Decoded: r.decoded.Load(), Processed: r.done.Load(), Dropped: r.dropped.Load()}}); err != nil {
					failed = true
					fail(err)
				}
			}
			continue
		}
		if !ok {
			return
		}
		if failed || ctx.Err() != nil {
			_, _ = p.pending.Wait(ctx) // withdraws it, or waits for its batch
			r.release()
			continue
		}
		res, err := p.pending.Wait(ctx)
		r.release()
		if err != nil {
			failed = true
			fail(err)
			continue
		}
		res.Timings.Decode = p.decode
		r.done.Add(1)
		r.add(res)
		if err := r.emit(backend.VideoEvent{Frame: &backend.FrameResult{Frame: p.frame.Index, PTS: p.frame.PTS, Time: p.frame.Time, Result: res}}); err != nil {
			failed = true
			fail(err)
			continue
		}
		if results != nil {
			select {
			case results <- detections{frame: p.frame.Index, dets: res.Detections}:
			case <-ctx.Done():
				failed = true
			}
		}
	}
}

// release frees a live stream's slot for the next frame.
func (r *run) release() {
	if r.slots != nil {
		<-r.slots
	}
}

// add sums a frame's stage times; the model time of a batch is shared by
// its frames.
func (r *run) add(res backend.ImageResult) {
	bs := max(1, res.BatchSize)
	r.timings.Queue += res.Timings.Queue
	r.timings.Decode += res.Timings.Decode
	r.timings.Preprocess += res.Timings.Preprocess
	r.timings.Infer += res.Timings.Infer / time.Duration(bs)
	r.timings.Post += res.Timings.Post
	r.maxBatch = max(r.maxBatch, res.BatchSize)
}

// write draws each frame with the boxes of the last processed frame at or
// before it and encodes it; it returns the time it spent.
func (r *run) write(ctx context.Context, wr *Writer, frames <-chan annotated, results <-chan detections, free chan gocv.Mat, fail func(error)) time.Duration {
	var spent time.Duration
	cur := detections{frame: -1}
	resultsOpen := true
	for f := range frames {
		for resultsOpen && f.use >= 0 && cur.frame < f.use {
			d, ok := <-results
			if !ok {
				resultsOpen = false
				break
			}
			cur = d
		}
		if ctx.Err() != nil {
			f.mat.Close()
			continue
		}
		var dets []yolo.Detection
		if f.use >= 0 && cur.frame == f.use {
			dets = cur.dets
		}
		t0 := time.Now()
		err := wr.Write(&f.mat, dets)
		spent += time.Since(t0)
		select {
		case free <- f.mat:
		default:
			f.mat.Close()
		}
		if err != nil {
			fail(err)
		}
	}
	return spent
}
