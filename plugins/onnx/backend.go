// Package onnx is the ONNX Runtime inference backend (binary
// azaion-plugin-onnx): it loads YOLO detectors from memory with
// onnxruntime_go, decodes and letterboxes images on a decode pool with
// plugins/internal/imaging (TurboJPEG, OpenCV), batches concurrent requests
// per model while the previous batch runs, and decodes the outputs with
// sdk/yolo. Only
// the plugin's main imports it; the daemon talks to it over gRPC.
package onnx

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/plugins/internal/imaging"
	"github.com/azaion/edge/plugins/internal/video"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/pluginconfig"
	"github.com/azaion/edge/sdk/version"
	"github.com/azaion/edge/sdk/yolo"
)

// Name is the backend's name in Info.
const Name = "onnx"

var _ backend.Backend = (*Backend)(nil)

// Backend is the ONNX Runtime backend. It is safe for concurrent use.
type Backend struct {
	cfg       Config
	log       hclog.Logger
	decoders  *imaging.Pool    // decodes and letterboxes the images of every model
	budget    *imaging.Budget  // bounds the decoded pixels in flight
	providers []string         // available providers, cpu last
	avail     map[string]error // why each non-cpu provider is unavailable (nil = available)

	mu     sync.Mutex
	models map[string]*loaded
	nextID uint64
	closed bool
}

// New loads ONNX Runtime from cfg.Library (once per process) and returns a
// backend. A requested execution provider that the library lacks is an error
// wrapping backend.ErrUnsupported, unless cfg.FallbackCPU is set, in which
// case it is logged and CPU is used.
func New(cfg Config, log hclog.Logger) (*Backend, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := initEnvironment(cfg.Library); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, log: log, avail: probeProviders(cfg.Library, cfg.Providers), models: map[string]*loaded{},
		decoders: imaging.NewPool(cfg.DecodeThreads, cfg.DecodePriority == pluginconfig.DecodePriorityLow)}
	budget := cfg.DecodeBudget
	if budget == 0 {
		budget = imaging.DefaultBudget()
	}
	b.budget = imaging.NewBudget(budget, cfg.DecodeWait)
	for _, p := range cfg.Providers {
		if err, probed := b.avail[p]; probed && err == nil {
			b.providers = append(b.providers, p)
		}
	}
	b.providers = append(b.providers, ProviderCPU)
	for _, p := range cfg.Providers {
		if p == ProviderCPU || b.avail[p] == nil {
			continue
		}
		err := providerError(cfg.Library, p, b.avail[p])
		if !cfg.FallbackCPU {
			b.decoders.Close()
			return nil, err
		}
		log.Warn("execution provider unavailable, falling back to cpu", "provider", p, "error", err)
	}
	log.Info("onnx runtime ready", "version", ort.GetVersion(), "library", cfg.Library,
		"providers", b.providers, "intra_op_threads", cfg.IntraOpThreads, "spinning", cfg.Spinning, "decode_threads", cfg.DecodeThreads, "decode_priority", cfg.DecodePriority)
	return b, nil
}

// Config returns the backend's configuration with defaults filled.
func (b *Backend) Config() Config { return b.cfg }

// Close unloads every model. The ONNX Runtime environment stays loaded for
// the life of the process.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	models := b.models
	b.models = map[string]*loaded{}
	b.mu.Unlock()
	for _, m := range models {
		m.close()
	}
	b.decoders.Close()
	return nil
}

// Info describes the backend and its devices.
func (b *Backend) Info(ctx context.Context) (*backend.Info, error) {
	return &backend.Info{
		Name:        Name,
		Version:     version.Version + " (onnxruntime " + ort.GetVersion() + ")",
		APIVersions: []string{backend.APIVersion},
		Devices:     devices(b.providers),
		Formats:     []string{model.FormatONNX},
		Providers:   append([]string(nil), b.providers...),
	}, nil
}

// Health returns nil when the backend can serve.
func (b *Backend) Health(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("onnx: backend closed: %w", backend.ErrUnavailable)
	}
	for h, m := range b.models {
		select {
		case <-m.done:
			return fmt.Errorf("onnx: model %s: runner stopped: %w", h, backend.ErrUnavailable)
		default:
		}
	}
	return nil
}

// Stats returns the counters of every loaded model, sorted by handle.
func (b *Backend) Stats(ctx context.Context) (*backend.Stats, error) {
	b.mu.Lock()
	s := &backend.Stats{Models: make([]backend.ModelStats, 0, len(b.models)), Videos: video.Active()}
	for _, m := range b.models {
		s.Models = append(s.Models, m.stats())
	}
	b.mu.Unlock()
	sort.Slice(s.Models, func(i, j int) bool { return s.Models[i].Handle < s.Models[j].Handle })
	return s, nil
}

// Load loads an ONNX model from memory, fills the zero fields of desc from
// the graph and its Ultralytics metadata, warms it up and starts its runner.
func (b *Backend) Load(ctx context.Context, desc model.Descriptor, data []byte) (*backend.LoadResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("onnx: empty model: %w", backend.ErrBadModel)
	}
	if desc.Name == "" {
		desc.Name = "model"
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: parse model %s: %v: %w", desc.Name, err, backend.ErrBadModel)
	}
	sh, err := inspectShape(ins, outs)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", desc.Name, err)
	}
	opts, used, err := sessionOptions(b.cfg, b.avail)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{sh.inName}, []string{sh.outName}, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: create session for %s: %v: %w", desc.Name, err, backend.ErrBadModel)
	}
	var md metadata
	if mm, err := sess.GetModelMetadata(); err == nil {
		md, err = readMetadata(mm)
		mm.Destroy()
		if err != nil {
			b.log.Warn("ignoring unreadable model metadata", "model", desc.Name, "error", err)
		}
	}
	resolved, runBatch, err := resolve(desc, sh, md, b.cfg.MaxBatch)
	if err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("model %s: %w", desc.Name, err)
	}
	m := newLoaded(resolved, sess, sh, runBatch, b.cfg.ConcurrentBatches, b.cfg.BatchWait)
	warm, err := m.warmup()
	if err != nil {
		m.close()
		return nil, fmt.Errorf("onnx: warm up %s: %v: %w", desc.Name, err, backend.ErrBadModel)
	}
	device := "cpu"
	if used[0] != ProviderCPU {
		device = "cuda:0"
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		m.close()
		return nil, fmt.Errorf("onnx: backend closed: %w", backend.ErrUnavailable)
	}
	b.nextID++
	m.handle = fmt.Sprintf("%s#%d", resolved.ID(), b.nextID)
	b.models[m.handle] = m
	b.mu.Unlock()
	m.start()
	b.log.Info("model loaded", "handle", m.handle, "input", fmt.Sprintf("%dx%d", resolved.InputWidth, resolved.InputHeight),
		"batch", resolved.Batch, "dynamic_batch", resolved.DynamicBatch, "max_batch", runBatch, "concurrent_batches", len(m.lanes), "output", resolved.Output,
		"classes", len(resolved.Classes), "providers", used, "warmup", warm)
	return &backend.LoadResult{
		Handle:     m.handle,
		Descriptor: resolved,
		Device:     device,
		Warmup:     warm,
		MaxBatch:   runBatch,
	}, nil
}

// Unload stops a model's runner (requests still queued fail) and frees it.
func (b *Backend) Unload(ctx context.Context, handle string) error {
	b.mu.Lock()
	m, ok := b.models[handle]
	delete(b.models, handle)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("onnx: unload %q: %w", handle, backend.ErrUnknownHandle)
	}
	m.close()
	b.log.Info("model unloaded", "handle", handle)
	return nil
}

func (b *Backend) model(handle string) (*loaded, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.models[handle]
	if !ok {
		return nil, fmt.Errorf("onnx: model %q: %w", handle, backend.ErrUnknownHandle)
	}
	return m, nil
}

// Detect decodes and letterboxes the images on the backend's decode pool,
// queues them for the model's runner (which batches them with other
// callers' images while it runs the previous batch), and returns one result
// per image.
func (b *Backend) Detect(ctx context.Context, handle string, images [][]byte, p backend.DetectParams) ([]backend.ImageResult, error) {
	arrived := time.Now()
	m, err := b.model(handle)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	params, err := checkParams(p.Params)
	if err != nil {
		return nil, err
	}
	m.requests.Add(1)
	m.pending.Add(int64(len(images)))
	res := make([]backend.ImageResult, len(images))
	reqs := make([]*request, len(images))
	errs := make([]error, len(images))
	var callErr error
	waited := 0
	waitUpTo := func(n int) {
		for ; waited < n; waited++ {
			if r := reqs[waited]; r != nil {
				if err := m.wait(ctx, r); err != nil && callErr == nil {
					callErr = err
				}
			}
		}
	}
	// The images of one call are decoded on the pool a chunk at a time, and
	// each chunk is queued at once so that it can share a batch. At most two
	// chunks are in flight, which bounds the memory a long call holds.
	chunk := max(m.maxBatch, b.decoders.Size())
	for lo := 0; lo < len(images); lo += chunk {
		hi := min(lo+chunk, len(images))
		waitUpTo(max(0, lo-chunk))
		if callErr == nil {
			_, err := b.decoders.Do(ctx, hi-lo, func(i int) {
				i += lo
				release, err := b.budget.Acquire(ctx, imaging.DecodedBytes(images[i], m.w, m.h))
				if err != nil {
					if errors.Is(err, imaging.ErrBudget) {
						err = fmt.Errorf("onnx: %w: %w", backend.ErrBusy, err)
					}
					errs[i] = err
					return
				}
				r, ie, err := m.prepare(images[i], params, p.MaxPixels, &res[i], arrived)
				release()
				reqs[i], errs[i], res[i].Err = r, err, ie
			})
			if err != nil {
				callErr = err
			}
		}
		for i := lo; i < hi; i++ {
			m.pending.Add(-1)
			if res[i].Err != nil {
				m.errors.Add(1)
			}
			if err := errs[i]; err != nil && callErr == nil {
				callErr = err
			}
			r := reqs[i]
			if r == nil {
				continue
			}
			if callErr == nil {
				callErr = m.enqueue(ctx, r)
				if callErr == nil {
					continue
				}
			} else {
				m.pool.put(r.tensor)
			}
			reqs[i] = nil // not queued
		}
	}
	waitUpTo(len(images))
	if callErr != nil {
		m.errors.Add(1)
		return nil, callErr
	}
	return res, nil
}

// DetectTensor runs an already preprocessed image: input holds the 3 CHW
// float32 planes of the model's input size (as Ultralytics' preprocessing
// produces them), lb the letterbox that produced it. It goes through the
// same queue and post-processing as Detect, with no decoding; it is how the
// runtime and the post-processing are tested and benchmarked apart from
// image decoding.
func (b *Backend) DetectTensor(ctx context.Context, handle string, input []float32, lb yolo.Letterbox, p yolo.Params) (backend.ImageResult, error) {
	var res backend.ImageResult
	m, err := b.model(handle)
	if err != nil {
		return res, err
	}
	params, err := checkParams(p)
	if err != nil {
		return res, err
	}
	if want := 3 * m.w * m.h; len(input) != want {
		return res, fmt.Errorf("onnx: input has %d values, want 3*%d*%d = %d", len(input), m.h, m.w, want)
	}
	m.requests.Add(1)
	t, err := m.pool.get()
	if err != nil {
		return res, err
	}
	copy(t.GetData(), input)
	r := &request{tensor: t, lb: lb, params: params, res: &res, arrived: time.Now(), done: make(chan struct{})}
	res.Width, res.Height = lb.SrcW, lb.SrcH
	if err := m.enqueue(ctx, r); err != nil {
		return res, err
	}
	if err := m.wait(ctx, r); err != nil {
		return res, err
	}
	return res, nil
}

// checkParams fills defaults and rejects out-of-range parameters.
func checkParams(p yolo.Params) (yolo.Params, error) {
	p = p.WithDefaults()
	switch {
	case p.Conf < 0 || p.Conf > 1:
		return p, fmt.Errorf("onnx: conf %v: want 0..1: %w", p.Conf, backend.ErrUnsupported)
	case p.IoU < 0 || p.IoU > 1:
		return p, fmt.Errorf("onnx: iou %v: want 0..1: %w", p.IoU, backend.ErrUnsupported)
	case p.MaxDet < 0:
		return p, fmt.Errorf("onnx: max_det %d: want > 0: %w", p.MaxDet, backend.ErrUnsupported)
	}
	return p, nil
}

// errUnloaded is the error of requests whose model was unloaded under them.
var errUnloaded = errors.New("model unloaded")
