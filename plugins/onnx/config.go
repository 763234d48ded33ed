package onnx

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Execution providers.
const (
	ProviderCPU      = "cpu"
	ProviderCUDA     = "cuda"
	ProviderTensorRT = "tensorrt"
)

// Environment variables read by ConfigFromEnv.
const (
	// EnvConfig holds the plugin configuration as JSON (the daemon sets it).
	EnvConfig = "AZAION_PLUGIN_CONFIG"
	// EnvLibrary is the path of libonnxruntime when the JSON does not give one.
	EnvLibrary = "AZAION_ORT_LIB"
)

// Defaults.
const (
	DefaultMaxBatch  = 4
	DefaultBatchWait = 2 * time.Millisecond
)

// Config configures the ONNX Runtime backend. Its JSON form is what the
// daemon passes in AZAION_PLUGIN_CONFIG.
type Config struct {
	// Library is the path of the libonnxruntime shared library (default
	// AZAION_ORT_LIB, else ~/.cache/azaion-edge/onnxruntime-1.30.0/libonnxruntime.so.1).
	Library string `json:"library,omitempty"`
	// IntraOpThreads is ONNX Runtime's intra-op thread count (0 = min(2, NumCPU)).
	IntraOpThreads int `json:"intra_op_threads,omitempty"`
	// InterOpThreads is ONNX Runtime's inter-op thread count (0 = 1).
	InterOpThreads int `json:"inter_op_threads,omitempty"`
	// Spinning lets ONNX Runtime's thread pools spin while idle (default
	// false: spinning burns the cores the decoders need).
	Spinning bool `json:"spinning,omitempty"`
	// MaxBatch is the largest batch formed for dynamic-batch models (default 4).
	MaxBatch int `json:"max_batch,omitempty"`
	// BatchWait is the longest a request waits for others to join its batch,
	// as a Go duration string (default "2ms").
	BatchWait Duration `json:"batch_wait,omitempty"`
	// Providers are the execution providers to use, in order of preference:
	// cpu, cuda, tensorrt (default [cpu]). CPU is always the last resort
	// inside ONNX Runtime for operators the others lack.
	Providers []string `json:"providers,omitempty"`
	// FallbackCPU runs on CPU when a requested provider is not available,
	// with a warning, instead of failing.
	FallbackCPU bool `json:"fallback_cpu,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "2ms".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "2ms" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"2ms\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// defaultLibrary is where `make deps` puts libonnxruntime.
func defaultLibrary() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return "libonnxruntime.so.1"
	}
	return filepath.Join(home, ".cache", "azaion-edge", "onnxruntime-1.30.0", "libonnxruntime.so.1")
}

// ConfigFromEnv reads the configuration from AZAION_PLUGIN_CONFIG (JSON;
// empty means defaults) and AZAION_ORT_LIB, fills the defaults and validates it.
func ConfigFromEnv() (Config, error) {
	var c Config
	if s := strings.TrimSpace(os.Getenv(EnvConfig)); s != "" {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("onnx: parse %s: %w", EnvConfig, err)
		}
	}
	if c.Library == "" {
		c.Library = os.Getenv(EnvLibrary)
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Library == "" {
		c.Library = defaultLibrary()
	}
	if c.IntraOpThreads == 0 {
		c.IntraOpThreads = min(2, runtime.NumCPU())
	}
	if c.InterOpThreads == 0 {
		c.InterOpThreads = 1
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BatchWait == 0 {
		c.BatchWait = Duration(DefaultBatchWait)
	}
	if len(c.Providers) == 0 {
		c.Providers = []string{ProviderCPU}
	}
	for i, p := range c.Providers {
		c.Providers[i] = strings.ToLower(strings.TrimSpace(p))
	}
	return c
}

// Validate checks the configuration, naming the field that is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.IntraOpThreads < 0 || c.IntraOpThreads > 256 {
		errs = append(errs, fmt.Errorf("intra_op_threads %d: want 0..256", c.IntraOpThreads))
	}
	if c.InterOpThreads < 0 || c.InterOpThreads > 256 {
		errs = append(errs, fmt.Errorf("inter_op_threads %d: want 0..256", c.InterOpThreads))
	}
	if c.MaxBatch < 0 || c.MaxBatch > 256 {
		errs = append(errs, fmt.Errorf("max_batch %d: want 0..256", c.MaxBatch))
	}
	if c.BatchWait < 0 || time.Duration(c.BatchWait) > time.Second {
		errs = append(errs, fmt.Errorf("batch_wait %s: want 0s..1s", time.Duration(c.BatchWait)))
	}
	seen := map[string]bool{}
	for _, p := range c.Providers {
		switch p {
		case ProviderCPU, ProviderCUDA, ProviderTensorRT:
		default:
			errs = append(errs, fmt.Errorf("providers: %q: want cpu, cuda or tensorrt", p))
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("providers: %q listed twice", p))
		}
		seen[p] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("onnx: invalid config: %w", err)
	}
	return nil
}
