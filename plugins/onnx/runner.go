package onnx

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/plugins/internal/imaging"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/yolo"
)

// Request states: a request is taken by the runner or cancelled by its
// caller, whichever comes first; the winner owns its input tensor.
const (
	stateQueued int32 = iota
	stateTaken
	stateCancelled
)

// active counts the images being decoded and the batches running in this
// plugin, every model together: a decode that starts with nothing else
// active has the machine's other cores to itself (Options.Parallel).
var active atomic.Int64

// multiCore is whether there is a second core for a parallel decode.
var multiCore = runtime.NumCPU() > 1

// request is one image queued for a model's runner.
type request struct {
	tensor *ort.Tensor[float32] // [1,3,h,w], preprocessed
	lb     yolo.Letterbox
	params yolo.Params
	res    *backend.ImageResult
	// arrived is when the image reached the backend: its queue time is the
	// time from there to its batch's start less its decode and preprocess.
	arrived time.Time
	state   atomic.Int32
	err     error // set by the runner when the batch failed
	done    chan struct{}
}

func (r *request) take() bool { return r.state.CompareAndSwap(stateQueued, stateTaken) }

// loaded is a loaded model: its session, owned by one runner goroutine that
// forms batches from the queue, runs them and post-processes the outputs.
type loaded struct {
	handle    string
	desc      model.Descriptor
	sess      *ort.DynamicAdvancedSession
	w, h      int
	bgr       bool
	fixed     int // fixed batch size, 0 when dynamic
	maxBatch  int
	batchWait time.Duration
	out       []int64 // output shape with batch dim
	layout    string
	in16      bool // the session takes and returns float16 (see fp16.go)
	out16     bool

	pool *tensorPool
	reqs chan *request
	// pending counts the images of Detect calls not yet queued (waiting for
	// a decoder or being decoded): the runner waits for a batch to fill only
	// while some are expected within the batch wait (see decodes).
	pending atomic.Int64
	decodes decodeClock
	// queueing counts the frames a video is handing to the queue together
	// (video.go): the runner waits for them.
	queueing atomic.Int64
	stop     chan struct{}
	done     chan struct{} // closed when every lane's runner has returned
	once     sync.Once

	// lanes are the runners, each with its own buffers: a second batch runs
	// while the first does (one session, concurrent runs).
	lanes []*lane

	requests, images, nbatches, errors atomic.Uint64
	// busy is the time the session ran at least one batch; running counts
	// the batches running now and since is when the count left zero.
	busyMu  sync.Mutex
	running int
	peak    int // the most batches that ran at once
	since   time.Time
	busy    time.Duration
}

// lane runs one batch at a time on the model's session: the batches handed
// to it (work), with its own tensors and post-processing state.
type lane struct {
	work    chan []*request
	batch   []*request // the last batch handed over (its backing is reused)
	batches map[int]*batchBufs
	inData  []float32 // backing of the batch input tensors
	outData []float32 // backing of the output tensors
	in16s   []uint16  // backing of the float16 input tensors
	out16s  []uint16  // backing of the float16 output tensors
	dec     yolo.Decoder
	scratch []yolo.Detection
	thread  *runThread // runs the session; nil if it could not start (runs are then cgo calls)
}

// batchBufs are the input and output tensors of one batch size.
type batchBufs struct {
	in, out     *ort.Tensor[float32] // out nil when the output shape is not static
	in16, out16 *halfTensor          // for float16 models
}

// newLoaded returns a model whose runners (started by start) run up to
// lanes batches at once on sess.
func newLoaded(d model.Descriptor, sess *ort.DynamicAdvancedSession, sh modelShape, runBatch, lanes int, wait time.Duration) *loaded {
	m := &loaded{
		desc: d, sess: sess, w: d.InputWidth, h: d.InputHeight, bgr: d.PixelFormat == "BGR",
		maxBatch: max(runBatch, 1), batchWait: wait, out: sh.out, layout: d.Output, in16: sh.in16, out16: sh.out16,
		reqs: make(chan *request, 256), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if !d.DynamicBatch {
		m.fixed = d.Batch
	}
	for range max(lanes, 1) {
		l := &lane{batches: map[int]*batchBufs{}}
		if m.staticOut() { // the lane allocates the outputs (bufs); runs into the runtime's own stay cgo calls
			l.thread, _ = newRunThread(sess, sh.inName, sh.outName) // rare (no thread or eventfd left): runs go the usual way
		}
		m.lanes = append(m.lanes, l)
	}
	m.pool = &tensorPool{shape: ort.NewShape(1, 3, int64(m.h), int64(m.w)), max: 2 * m.maxBatch * len(m.lanes)}
	return m
}

// start starts the model's runner: the goroutine that forms batches (run)
// and one goroutine per lane that runs them.
func (m *loaded) start() {
	free := make(chan *lane, len(m.lanes))
	var wg sync.WaitGroup
	for _, l := range m.lanes {
		l.work = make(chan []*request)
		free <- l
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range l.work {
				m.runBatch(l, batch)
				free <- l
			}
		}()
	}
	go func() {
		m.run(free)
		for _, l := range m.lanes {
			close(l.work)
		}
		wg.Wait()
		close(m.done)
	}()
}

// close stops the runner, fails what is still queued and frees the session.
func (m *loaded) close() {
	m.once.Do(func() {
		close(m.stop)
		select {
		case <-m.done:
		default:
			if m.handle == "" { // runner never started
				close(m.done)
			} else {
				<-m.done
			}
		}
		for _, l := range m.lanes {
			for _, bb := range l.batches {
				if bb.in != nil {
					bb.in.Destroy()
				}
				if bb.out != nil {
					bb.out.Destroy()
				}
				bb.in16.destroy()
				bb.out16.destroy()
			}
			if l.thread != nil {
				l.thread.close()
			}
		}
		m.pool.close()
		m.sess.Destroy()
	})
}

func (m *loaded) stats() backend.ModelStats {
	return backend.ModelStats{
		Handle: m.handle, Name: m.desc.Name,
		Requests: m.requests.Load(), Images: m.images.Load(), Batches: m.nbatches.Load(),
		Errors: m.errors.Load(), Busy: m.busyTime(),
	}
}

// busyTime is the time the session has run at least one batch, up to now.
func (m *loaded) busyTime() time.Duration {
	m.busyMu.Lock()
	defer m.busyMu.Unlock()
	if m.running > 0 {
		return m.busy + time.Since(m.since)
	}
	return m.busy
}

// setRunning records that a batch starts (+1) or ends (-1) at now.
func (m *loaded) setRunning(delta int, now time.Time) {
	m.busyMu.Lock()
	defer m.busyMu.Unlock()
	if m.running == 0 {
		m.since = now
	}
	m.running += delta
	m.peak = max(m.peak, m.running)
	if m.running == 0 {
		m.busy += now.Sub(m.since)
	}
}

// prepare decodes and letterboxes one image into a pooled input tensor.
// arrived is when the image reached the backend.
func (m *loaded) prepare(img []byte, p yolo.Params, maxPixels int64, res *backend.ImageResult, arrived time.Time) (*request, *backend.ImageError, error) {
	t, err := m.pool.get()
	if err != nil {
		return nil, nil, err
	}
	id := m.decodes.start()
	// An image decoded while nothing else runs in this plugin takes two
	// threads (a lone request's latency); under load, one.
	alone := active.Add(1) == 1
	d, err := imaging.Preprocess(img, t.GetData(), m.w, m.h, m.bgr, imaging.Options{MaxPixels: maxPixels, Parallel: alone && multiCore})
	active.Add(-1)
	m.decodes.end(id, d.Decode+d.Preprocess)
	res.Width, res.Height = d.Width, d.Height
	res.Timings.Decode, res.Timings.Preprocess = d.Decode, d.Preprocess
	if err != nil {
		m.pool.put(t)
		return nil, imaging.ImageError(err), nil
	}
	return &request{tensor: t, lb: d.Letterbox, params: p, res: res, arrived: arrived, done: make(chan struct{})}, nil, nil
}

// enqueue hands a prepared request to the runner.
func (m *loaded) enqueue(ctx context.Context, r *request) error {
	select {
	case m.reqs <- r:
		return nil
	case <-ctx.Done():
		m.pool.put(r.tensor)
		return ctx.Err()
	case <-m.stop:
		m.pool.put(r.tensor)
		return fmt.Errorf("onnx: model %s: %w: %w", m.handle, errUnloaded, backend.ErrUnknownHandle)
	}
}

// wait waits for a queued request. A caller whose context ends while its
// request still waits in the queue withdraws it (the batch forms without
// it); once the runner has taken it, the caller waits for the batch.
func (m *loaded) wait(ctx context.Context, r *request) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateCancelled) {
			m.pool.put(r.tensor)
			return ctx.Err()
		}
	case <-m.done:
		if r.state.CompareAndSwap(stateQueued, stateCancelled) {
			m.pool.put(r.tensor)
			return fmt.Errorf("onnx: model %s: %w: %w", m.handle, errUnloaded, backend.ErrUnknownHandle)
		}
	}
	<-r.done
	return r.err
}

// run forms the batches: once a lane is free, it takes the first queued
// request and every other one already queued, up to maxBatch. While the
// batch is not full it waits for more only when an image still being
// decoded is expected within the batch wait since the first one (an idle
// runtime never waits for images that are not on their way), then hands
// the batch to the lane. With a lane still running the previous batch the
// new one runs beside it on the same session; with every lane busy,
// requests queue and fill the next batch: batches fill when the runtime
// is busy. It returns after a stop, with the queue drained.
func (m *loaded) run(free chan *lane) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var l *lane
		select {
		case <-m.stop:
			m.drain()
			return
		case l = <-free:
		}
		batch := l.batch[:0] // the lane is done with its previous batch
		select {
		case <-m.stop:
			m.drain()
			return
		case r := <-m.reqs:
			if !r.take() {
				free <- l
				continue
			}
			batch = append(batch, r)
		}
		deadline := time.Now().Add(m.batchWait)
	gather:
		for len(batch) < m.maxBatch {
			select {
			case r := <-m.reqs:
				if r.take() {
					batch = append(batch, r)
				}
				continue
			default:
			}
			now := time.Now()
			left := deadline.Sub(now)
			if left <= 0 || m.queueing.Load() <= 0 && (m.pending.Load() <= 0 || m.decodes.nextDone(now) > left) {
				break
			}
			timer.Reset(left)
			select {
			case r := <-m.reqs:
				timer.Stop()
				if r.take() {
					batch = append(batch, r)
				}
			case <-timer.C:
				break gather
			case <-m.stop:
				timer.Stop()
				break gather
			}
		}
		l.batch = batch
		l.work <- batch
	}
}

// drain fails the requests left in the queue after a stop.
func (m *loaded) drain() {
	for {
		select {
		case r := <-m.reqs:
			if r.take() {
				r.err = fmt.Errorf("onnx: model %s: %w: %w", m.handle, errUnloaded, backend.ErrUnknownHandle)
				m.pool.put(r.tensor)
				close(r.done)
			}
		default:
			return
		}
	}
}

// runBatch runs one batch and post-processes each image. Each image's
// timings add up to its time in the backend: queue (waiting for a decoder,
// for the other images of its call and for the runner) + decode +
// preprocess + infer (the batch's) + post (from the end of inference to its
// own detections).
func (m *loaded) runBatch(l *lane, batch []*request) {
	start := time.Now()
	active.Add(1)
	m.setRunning(1, start)
	out, release, err := m.infer(l, batch)
	inferEnd := time.Now()
	m.setRunning(-1, inferEnd)
	active.Add(-1)
	infer := inferEnd.Sub(start)
	m.nbatches.Add(1)
	m.images.Add(uint64(len(batch)))
	for i, r := range batch {
		t := &r.res.Timings
		t.Queue = max(0, start.Sub(r.arrived)-t.Decode-t.Preprocess)
		t.Infer = infer
		r.res.BatchSize = len(batch)
		if err != nil {
			r.err = fmt.Errorf("onnx: run model %s: %v: %w", m.handle, err, backend.ErrUnavailable)
		} else {
			r.err = m.post(l, out, i, r)
			t.Post = time.Since(inferEnd)
		}
	}
	if release != nil {
		release()
	}
	for _, r := range batch {
		m.pool.put(r.tensor)
		close(r.done)
	}
}

// infer runs the session on the batch and returns the output tensor. A lone
// image on a batch-1 or dynamic model runs straight from its own tensor;
// otherwise the images are copied into the batch tensor (padded to a fixed
// batch size).
func (m *loaded) infer(l *lane, batch []*request) (*ort.Tensor[float32], func(), error) {
	n := len(batch)
	bs := n
	if m.fixed > 0 {
		bs = m.fixed
	}
	bb, err := m.bufs(l, bs)
	if err != nil {
		return nil, nil, err
	}
	var in ort.Value
	per := 3 * m.w * m.h
	switch {
	case m.in16:
		for i, r := range batch {
			halvesFrom(bb.in16.data[i*per:(i+1)*per], r.tensor.GetData())
		}
		in = bb.in16.t
	case bs == 1:
		in = batch[0].tensor
	default:
		dst := bb.in.GetData()
		for i, r := range batch {
			copy(dst[i*per:(i+1)*per], r.tensor.GetData())
		}
		in = bb.in
	}
	if m.out16 {
		if err := m.runSession(l, in, bb.out16.t); err != nil {
			return nil, nil, err
		}
		o := int(m.out[1] * m.out[2])
		floatsFrom(bb.out.GetData()[:n*o], bb.out16.data[:n*o])
		return bb.out, nil, nil
	}
	if bb.out != nil {
		return bb.out, nil, m.runSession(l, in, bb.out)
	}
	outs := []ort.Value{nil}
	if err := m.sess.Run([]ort.Value{in}, outs); err != nil {
		return nil, nil, err
	}
	t, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		outs[0].Destroy()
		return nil, nil, fmt.Errorf("output is %T, want a float32 tensor", outs[0])
	}
	return t, func() { t.Destroy() }, nil
}

// runSession runs the session on in into out, on the lane's thread when it has
// one (see runThread).
func (m *loaded) runSession(l *lane, in, out ort.Value) error {
	if l.thread != nil {
		return l.thread.run(in, out)
	}
	return m.sess.Run([]ort.Value{in}, []ort.Value{out})
}

// staticOut reports whether the output shape is known past the batch
// dimension, so that the lanes allocate the output tensors.
func (m *loaded) staticOut() bool { return m.out[1] > 0 && m.out[2] > 0 }

// bufs returns the tensors of batch size bs, creating them on first use.
// The tensors of every batch size are views of one input and one output
// buffer sized for the largest batch.
func (m *loaded) bufs(l *lane, bs int) (*batchBufs, error) {
	if bb, ok := l.batches[bs]; ok {
		return bb, nil
	}
	bb := &batchBufs{}
	var err error
	if m.in16 {
		per := 3 * m.h * m.w
		if l.in16s == nil {
			l.in16s = make([]uint16, max(m.maxBatch, m.fixed)*per)
		}
		if bb.in16, err = newHalfTensor(ort.NewShape(int64(bs), 3, int64(m.h), int64(m.w)), l.in16s[:bs*per]); err != nil {
			return nil, err
		}
	} else if bs > 1 {
		if l.inData == nil {
			l.inData = make([]float32, max(m.maxBatch, m.fixed)*3*m.h*m.w)
		}
		if bb.in, err = ort.NewTensor(ort.NewShape(int64(bs), 3, int64(m.h), int64(m.w)), l.inData); err != nil {
			return nil, err
		}
	}
	if m.staticOut() {
		if l.outData == nil {
			l.outData = make([]float32, int64(max(m.maxBatch, m.fixed))*m.out[1]*m.out[2])
		}
		if bb.out, err = ort.NewTensor(ort.NewShape(int64(bs), m.out[1], m.out[2]), l.outData); err != nil {
			if bb.in != nil {
				bb.in.Destroy()
			}
			bb.in16.destroy()
			return nil, err
		}
		if m.out16 {
			o := int(m.out[1] * m.out[2])
			if l.out16s == nil {
				l.out16s = make([]uint16, max(m.maxBatch, m.fixed)*o)
			}
			if bb.out16, err = newHalfTensor(ort.NewShape(int64(bs), m.out[1], m.out[2]), l.out16s[:bs*o]); err != nil {
				bb.out.Destroy()
				if bb.in != nil {
					bb.in.Destroy()
				}
				bb.in16.destroy()
				return nil, err
			}
		}
	}
	l.batches[bs] = bb
	return bb, nil
}

// post decodes image i of the output into its result, in original pixels.
func (m *loaded) post(l *lane, out *ort.Tensor[float32], i int, r *request) error {
	shape := out.GetShape()
	if len(shape) != 3 {
		return fmt.Errorf("onnx: output shape %v, want rank 3", shape)
	}
	per := int(shape[1] * shape[2])
	data := out.GetData()[i*per : (i+1)*per]
	var err error
	dets := l.scratch[:0]
	switch m.layout {
	case model.OutputYOLONMS:
		dets, err = l.dec.DecodeNMS(dets, data, int(shape[1]), r.params)
	default:
		dets, err = l.dec.DecodeRaw(dets, data, int(shape[1])-4, int(shape[2]), r.params)
	}
	l.scratch = dets
	if err != nil {
		return fmt.Errorf("onnx: decode output: %w", err)
	}
	r.lb.Unletterbox(dets)
	r.res.Detections = append(make([]yolo.Detection, 0, len(dets)), dets...)
	return nil
}

// warmup runs one batch-1 inference on a grey image on the first lane
// (before the runners start) and returns how long it took.
func (m *loaded) warmup() (time.Duration, error) {
	t, err := m.pool.get()
	if err != nil {
		return 0, err
	}
	defer m.pool.put(t)
	d := t.GetData()
	for i := range d {
		d[i] = imaging.PadValue
	}
	r := &request{tensor: t, lb: yolo.NewLetterbox(m.w, m.h, m.w, m.h), params: yolo.Params{}.WithDefaults(), res: &backend.ImageResult{}}
	start := time.Now()
	bs := 1
	if m.fixed > 0 {
		bs = m.fixed
	}
	batch := make([]*request, bs)
	for i := range batch {
		batch[i] = r
	}
	if m.fixed == 0 {
		batch = batch[:1]
	}
	out, release, err := m.infer(m.lanes[0], batch)
	if err != nil {
		return 0, err
	}
	err = m.post(m.lanes[0], out, 0, r)
	if release != nil {
		release()
	}
	return time.Since(start), err
}

// tensorPool recycles [1,3,h,w] input tensors.
type tensorPool struct {
	shape  ort.Shape
	max    int
	mu     sync.Mutex
	free   []*ort.Tensor[float32]
	closed bool
}

func (p *tensorPool) get() (*ort.Tensor[float32], error) {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		t := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	t, err := ort.NewEmptyTensor[float32](p.shape)
	if err != nil {
		return nil, fmt.Errorf("onnx: allocate input tensor %v: %v: %w", p.shape, err, backend.ErrUnavailable)
	}
	return t, nil
}

func (p *tensorPool) put(t *ort.Tensor[float32]) {
	p.mu.Lock()
	if !p.closed && len(p.free) < p.max {
		p.free = append(p.free, t)
		t = nil
	}
	p.mu.Unlock()
	if t != nil {
		t.Destroy()
	}
}

func (p *tensorPool) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, t := range free {
		t.Destroy()
	}
}

// decodeClock tracks a model's images being decoded, so the runner can tell
// whether the next one is expected within its batch wait.
type decodeClock struct {
	mu       sync.Mutex
	next     uint64
	inflight map[uint64]time.Time // decode start of each image being decoded
	avg      time.Duration        // moving average of decode + preprocess
}

// start records an image's decode start and returns its id for end.
func (c *decodeClock) start() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == nil {
		c.inflight = map[uint64]time.Time{}
	}
	c.next++
	c.inflight[c.next] = time.Now()
	return c.next
}

// end records that image id took d to decode and preprocess.
func (c *decodeClock) end(id uint64, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, id)
	if c.avg == 0 {
		c.avg = d
	} else {
		c.avg += (d - c.avg) / 8
	}
}

// nextDone estimates how long from now until the next image being decoded
// is ready: the oldest decode's expected end, or a whole decode when none
// is running yet (the images wait for a decoder).
func (c *decodeClock) nextDone(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) == 0 {
		return c.avg
	}
	oldest := now
	for _, t := range c.inflight {
		if t.Before(oldest) {
			oldest = t
		}
	}
	return max(0, oldest.Add(c.avg).Sub(now))
}
