package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/sdk/backend"
)

// The ONNX Runtime environment is process-wide: it is initialised once, from
// the first library path given, and lives until the process exits.
var (
	envOnce sync.Once
	envLib  string
	envErr  error
)

// initEnvironment loads libonnxruntime from lib and creates the environment.
func initEnvironment(lib string) error {
	envOnce.Do(func() {
		envLib = lib
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			envErr = fmt.Errorf("onnx: load ONNX Runtime from %s: %w", lib, err)
		}
	})
	if envErr != nil {
		return envErr
	}
	if lib != envLib {
		return fmt.Errorf("onnx: ONNX Runtime already loaded from %s, cannot also load %s", envLib, lib)
	}
	return nil
}

// sessionOptions builds the session options for cfg: thread counts, spinning
// and the execution providers that are available. It returns the providers
// actually used (the last always cpu).
func sessionOptions(cfg Config, avail map[string]error) (*ort.SessionOptions, []string, error) {
	o, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: session options: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			o.Destroy()
		}
	}()
	if err := o.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
		return nil, nil, fmt.Errorf("onnx: intra_op_threads: %w", err)
	}
	if err := o.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
		return nil, nil, fmt.Errorf("onnx: inter_op_threads: %w", err)
	}
	spin := "0"
	if cfg.Spinning {
		spin = "1"
	}
	for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
		if err := o.AddSessionConfigEntry(k, spin); err != nil {
			return nil, nil, fmt.Errorf("onnx: %s: %w", k, err)
		}
	}
	var used []string
	for _, p := range cfg.Providers {
		if p == ProviderCPU {
			continue
		}
		if err, probed := avail[p]; !probed || err != nil {
			continue // New already failed or warned
		}
		if err := appendProvider(o, p); err != nil {
			if !cfg.FallbackCPU {
				return nil, nil, providerError(cfg.Library, p, err)
			}
			continue
		}
		used = append(used, p)
	}
	ok = true
	return o, append(used, ProviderCPU), nil
}

// appendProvider adds execution provider p (cuda or tensorrt) to o.
func appendProvider(o *ort.SessionOptions, p string) error {
	switch p {
	case ProviderCUDA:
		po, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer po.Destroy()
		return o.AppendExecutionProviderCUDA(po)
	case ProviderTensorRT:
		po, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer po.Destroy()
		return o.AppendExecutionProviderTensorRT(po)
	}
	return fmt.Errorf("unknown execution provider %q", p)
}

// providerError is the one error for an execution provider that the
// library cannot provide.
func providerError(lib, p string, err error) error {
	return fmt.Errorf("onnx: execution provider %s is not available in %s: %v: %w", p, lib, err, backend.ErrUnsupported)
}

// providerLibs are the shared libraries ONNX Runtime loads, from its own
// folder, for each execution provider.
var providerLibs = map[string][]string{
	ProviderCUDA:     {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"},
	ProviderTensorRT: {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_tensorrt.so"},
}

// probeProviders tries each requested non-cpu provider once and returns,
// for each, nil when it can be appended to a session or why not. A provider
// whose libraries are missing beside lib is not tried.
func probeProviders(lib string, requested []string) map[string]error {
	res := map[string]error{}
	for _, p := range requested {
		if p == ProviderCPU {
			continue
		}
		missing := ""
		for _, f := range providerLibs[p] {
			if _, err := os.Stat(filepath.Join(filepath.Dir(lib), f)); err != nil {
				missing = f
				break
			}
		}
		if missing != "" {
			res[p] = fmt.Errorf("%s is missing beside it (a CPU-only build, such as the npm onnxruntime-node library, has no %s provider)", missing, p)
			continue
		}
		o, err := ort.NewSessionOptions()
		if err != nil {
			res[p] = err
			continue
		}
		res[p] = appendProvider(o, p)
		o.Destroy()
	}
	return res
}
