package pluginconfig

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// ONNX Runtime execution providers.
const (
	ProviderCPU      = "cpu"
	ProviderCUDA     = "cuda"
	ProviderTensorRT = "tensorrt"
)

// ONNX configures the ONNX Runtime backend plugin (azaion-plugin-onnx). It
// is the daemon's `onnx:` YAML section (without `enabled`) and the JSON the
// plugin receives.
type ONNX struct {
	// Library is the path of the libonnxruntime shared library.
	Library string `yaml:"library" json:"library"`
	// IntraOpThreads is ONNX Runtime's intra-op thread count (0 = min(2, cores)).
	IntraOpThreads int `yaml:"intra_op_threads" json:"intra_op_threads"`
	// InterOpThreads is ONNX Runtime's inter-op thread count (0 = 1).
	InterOpThreads int `yaml:"inter_op_threads" json:"inter_op_threads"`
	// Spinning lets ONNX Runtime's thread pools spin while idle (default
	// false: spinning burns the cores the decoders need).
	Spinning bool `yaml:"spinning" json:"spinning"`
	// MaxBatch is the largest batch formed for dynamic-batch models (default 4).
	MaxBatch int `yaml:"max_batch" json:"max_batch"`
	// ConcurrentBatches is how many batches of one model run at once on its
	// session (0 = 2 when IntraOpThreads is at least 2, else 1). A lone
	// batch has the runtime's threads to itself; a second one, started
	// while the first runs, shares them (each run also computes on its
	// calling thread), so neither waits for the other's synchronisation
	// points: on 2 cores two runs at batch 1 do 1.3x the images per second
	// of one run at any batch size.
	ConcurrentBatches int `yaml:"concurrent_batches" json:"concurrent_batches"`
	// BatchWait is the longest a batch waits for images still being decoded
	// to join it (default 2ms); the runner waits only for images expected
	// within it.
	BatchWait time.Duration `yaml:"batch_wait" json:"batch_wait"`
	// DecodeThreads is the size of the plugin's decode pool, which decodes
	// and letterboxes images while the runtime runs the previous batch (0 =
	// DefaultDecodeThreads).
	DecodeThreads int `yaml:"decode_threads" json:"decode_threads"`
	// DecodePriority is the decode threads' CPU priority: "normal"
	// (default: the runtime's) or "low" (niceness 19: decoding fills the
	// gaps the runtime's threads leave and never preempts them, but any
	// other busy process of equal standing, such as an augmentation job of
	// the trainer plugin, then starves it).
	DecodePriority string `yaml:"decode_priority" json:"decode_priority"`
	// DecodeBudget bounds the bytes of decoded pixels the plugin holds at
	// once (0 = an eighth of the machine's memory, 512 MiB to 4 GiB); a
	// decode that does not fit waits up to DecodeWait, then its request
	// is refused (429).
	DecodeBudget int64 `yaml:"decode_budget" json:"decode_budget"`
	// DecodeWait is how long a decode waits for room in the budget (default 1s).
	DecodeWait time.Duration `yaml:"decode_wait" json:"decode_wait"`
	// Providers are the execution providers to use, in order of preference:
	// cpu, cuda, tensorrt (default [cpu]). CPU is always the last resort
	// inside ONNX Runtime for operators the others lack.
	Providers []string `yaml:"providers" json:"providers"`
	// FallbackCPU runs on CPU when a requested provider is not available,
	// with a warning, instead of failing.
	FallbackCPU bool `yaml:"fallback_cpu" json:"fallback_cpu"`
}

// Decode priorities (ONNX.DecodePriority).
const (
	DecodePriorityLow    = "low"
	DecodePriorityNormal = "normal"
)

// ONNX defaults.
const (
	DefaultORTLibrary = "/usr/lib/azaion/libonnxruntime.so.1"
	DefaultMaxBatch   = 4
	DefaultBatchWait  = 2 * time.Millisecond
	// MaxDefaultDecodeThreads bounds DefaultDecodeThreads: more decoders
	// than this outrun any one inference runtime.
	MaxDefaultDecodeThreads = 8
)

// DefaultDecodeThreads is the decode pool size for a machine with cpus
// logical CPUs whose inference runtime uses runtimeThreads of them: the
// CPUs the runtime leaves, at least 1 and at most MaxDefaultDecodeThreads.
// On 2 CPUs with a 2-thread runtime that is 1 (decoding then takes a core
// from the runtime only while it has an image to decode); on 8 CPUs, 6.
func DefaultDecodeThreads(cpus, runtimeThreads int) int {
	return min(max(cpus-runtimeThreads, 1), MaxDefaultDecodeThreads)
}

// DefaultONNX returns the ONNX backend's defaults (the packaged library path,
// CPU, batches of up to 4 with a 2 ms wait).
func DefaultONNX() ONNX {
	return ONNX{Library: DefaultORTLibrary, InterOpThreads: 1, MaxBatch: DefaultMaxBatch,
		BatchWait: DefaultBatchWait, Providers: []string{ProviderCPU}}
}

// WithDefaults returns c with its automatic values resolved for this
// machine: zero thread counts, batch and wait take their defaults, and
// provider names are lower-cased.
func (c ONNX) WithDefaults() ONNX {
	if c.IntraOpThreads == 0 {
		c.IntraOpThreads = min(2, runtime.NumCPU())
	}
	if c.InterOpThreads == 0 {
		c.InterOpThreads = 1
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.DecodeWait == 0 {
		c.DecodeWait = time.Second
	}
	if c.BatchWait == 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.ConcurrentBatches == 0 {
		c.ConcurrentBatches = 1
		if c.IntraOpThreads >= 2 {
			c.ConcurrentBatches = 2
		}
	}
	if c.DecodeThreads == 0 {
		c.DecodeThreads = DefaultDecodeThreads(runtime.NumCPU(), c.IntraOpThreads)
	}
	if c.DecodePriority == "" {
		c.DecodePriority = DecodePriorityNormal
	}
	if len(c.Providers) == 0 {
		c.Providers = []string{ProviderCPU}
	}
	p := make([]string, len(c.Providers))
	for i, v := range c.Providers {
		p[i] = strings.ToLower(strings.TrimSpace(v))
	}
	c.Providers = p
	return c
}

// Validate checks the configuration and returns the first problem, starting
// with the field's name as it is spelled in YAML and JSON (callers prefix
// the section: "onnx.max_batch ...").
func (c ONNX) Validate() error {
	if c.Library == "" {
		return errors.New("library: the path of libonnxruntime is empty")
	}
	if c.IntraOpThreads < 0 || c.IntraOpThreads > 256 {
		return fmt.Errorf("intra_op_threads %d: want 0..256", c.IntraOpThreads)
	}
	if c.InterOpThreads < 0 || c.InterOpThreads > 256 {
		return fmt.Errorf("inter_op_threads %d: want 0..256", c.InterOpThreads)
	}
	if c.ConcurrentBatches < 0 || c.ConcurrentBatches > 16 {
		return fmt.Errorf("concurrent_batches %d: want 0..16", c.ConcurrentBatches)
	}
	if c.DecodeThreads < 0 || c.DecodeThreads > 256 {
		return fmt.Errorf("decode_threads %d: want 0..256", c.DecodeThreads)
	}
	switch c.DecodePriority {
	case "", DecodePriorityLow, DecodePriorityNormal:
	default:
		return fmt.Errorf("decode_priority %q: want low or normal", c.DecodePriority)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 64 {
		return fmt.Errorf("max_batch %d: want 1..64", c.MaxBatch)
	}
	if c.DecodeBudget < 0 {
		return fmt.Errorf("decode_budget %d: must not be negative", c.DecodeBudget)
	}
	if c.DecodeWait < 0 || c.DecodeWait > time.Minute {
		return fmt.Errorf("decode_wait %s: want 0s..1m", c.DecodeWait)
	}
	if c.BatchWait < 0 || c.BatchWait > time.Second {
		return fmt.Errorf("batch_wait %s: want 0s..1s", c.BatchWait)
	}
	seen := map[string]bool{}
	for _, p := range c.Providers {
		lp := strings.ToLower(strings.TrimSpace(p))
		switch lp {
		case ProviderCPU, ProviderCUDA, ProviderTensorRT:
		default:
			return fmt.Errorf("providers: unknown provider %q (want cpu, cuda or tensorrt)", p)
		}
		if seen[lp] {
			return fmt.Errorf("providers: %q listed twice", p)
		}
		seen[lp] = true
	}
	return nil
}
