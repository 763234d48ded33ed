package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/pluginconfig"
	"github.com/azaion/edge/sdk/trainer"
)

// pluginProbe says how `azaion version` and `azaion doctor` start one plugin
// on its own, as the daemon would, to ask what it is.
type pluginProbe struct {
	name string
	// path is the plugin binary (its checksum is in path + ".sha256").
	path string
	// enabled is whether the configuration launches it.
	enabled bool
	// probe launches it once (see probeSpec); use, if set, runs while it runs.
	probe func(ctx context.Context, timeout time.Duration, use func(ctx context.Context, f *pluginFacts) error) (*pluginFacts, error)
}

// probes returns the plugins the configuration knows: the ONNX Runtime
// backend and the trainer, with the configuration the daemon gives them.
func probes(cfg *config.Config) []pluginProbe {
	onnxEnv, onnxErr := pluginconfig.Encode(&cfg.ONNX.ONNX)
	onnx := pluginmgr.Spec[backend.Backend]{
		Name:     catalog.BackendONNX,
		Path:     filepath.Join(cfg.Paths.Plugins, "azaion-plugin-"+catalog.BackendONNX),
		Plugins:  backend.PluginSet(nil),
		Dispense: backend.PluginName,
		Env:      []string{onnxEnv},
	}
	tr, trErr := jobs.PluginSpec(cfg)
	if trErr != nil {
		tr.Name, tr.Path = "trainer", filepath.Join(cfg.Paths.Plugins, "azaion-plugin-trainer")
	}
	fail := func(err error) func(context.Context, time.Duration, func(context.Context, *pluginFacts) error) (*pluginFacts, error) {
		return func(context.Context, time.Duration, func(context.Context, *pluginFacts) error) (*pluginFacts, error) {
			return nil, err
		}
	}
	p := []pluginProbe{
		{name: onnx.Name, path: onnx.Path, enabled: cfg.ONNXEnabled(),
			probe: func(ctx context.Context, timeout time.Duration, use func(context.Context, *pluginFacts) error) (*pluginFacts, error) {
				return probeSpec(ctx, onnx, timeout, describeBackend, use)
			}},
		{name: tr.Name, path: tr.Path, enabled: cfg.Trainer.Enabled,
			probe: func(ctx context.Context, timeout time.Duration, use func(context.Context, *pluginFacts) error) (*pluginFacts, error) {
				return probeSpec(ctx, tr, timeout, describeTrainer, use)
			}},
	}
	if onnxErr != nil {
		p[0].probe = fail(onnxErr)
	}
	if trErr != nil {
		p[1].probe = fail(trErr)
	}
	return p
}

// pluginFacts is what a started plugin says about itself.
type pluginFacts struct {
	// Version is the plugin's version (the ONNX plugin adds its runtime's).
	Version     string
	APIVersions []string
	// Devices are a backend's devices ("cpu", "cuda:0 NVIDIA ...").
	Devices []string
	// Providers are a backend's execution providers.
	Providers []string
	// Backend is the dispensed backend, valid inside probeSpec's use function.
	Backend backend.Backend
}

// probeSpec launches a plugin once with its checksum verified, as the daemon
// does (its own TMPDIR, its logs not re-logged), asks what it is, runs use
// (if any) while it runs, and stops it. A plugin that cannot start returns
// the reason it gave.
func probeSpec[T any](ctx context.Context, spec pluginmgr.Spec[T], timeout time.Duration,
	describe func(context.Context, T) (*pluginFacts, error), use func(context.Context, *pluginFacts) error) (*pluginFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "azaion-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	spec.LogLevel = "off"
	spec.TempDir = filepath.Join(tmp, "tmp")                                               // never under the service's state folder
	spec.MinBackoff, spec.MaxBackoff, spec.ConfigBackoff = time.Hour, time.Hour, time.Hour // one launch only
	spec.StartTimeout = timeout
	spec.OnReady, spec.Health = nil, nil
	result := make(chan error, 1)
	var facts *pluginFacts
	spec.OnStart = func(ctx context.Context, impl T) error {
		f, err := describe(ctx, impl)
		if err == nil && use != nil {
			err = use(ctx, f)
		}
		facts = f
		result <- err
		return err
	}
	p := pluginmgr.New(spec, slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-result:
			return facts, err
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer within %s", timeout)
		case <-tick.C:
			if st := p.Status(); st.State == pluginmgr.StateDown {
				first, _, _ := strings.Cut(st.LastError, "\n")
				return nil, errors.New(strings.TrimSpace(first))
			}
		}
	}
}

// describeBackend asks a backend plugin what it is.
func describeBackend(ctx context.Context, b backend.Backend) (*pluginFacts, error) {
	info, err := b.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("info: %w", err)
	}
	f := &pluginFacts{Version: info.Version, APIVersions: info.APIVersions, Providers: info.Providers, Backend: b}
	for _, d := range info.Devices {
		s := d.ID
		if d.Name != "" && d.Name != d.ID {
			s += " " + d.Name
		}
		f.Devices = append(f.Devices, s)
	}
	if !slices.Contains(info.APIVersions, backend.APIVersion) {
		return f, fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, backend.APIVersion)
	}
	return f, nil
}

// describeTrainer asks the trainer plugin what it is.
func describeTrainer(ctx context.Context, t trainer.Trainer) (*pluginFacts, error) {
	info, err := t.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("info: %w", err)
	}
	f := &pluginFacts{Version: info.Version, APIVersions: info.APIVersions}
	if !slices.Contains(info.APIVersions, trainer.APIVersion) {
		return f, fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, trainer.APIVersion)
	}
	return f, nil
}
