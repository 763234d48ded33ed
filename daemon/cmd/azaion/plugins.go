package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/backend"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
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
	spec    pluginmgr.Spec
}

// probes returns the plugins the configuration knows: the ONNX Runtime
// backend and the trainer.
func probes(cfg *config.Config) []pluginProbe {
	onnx := pluginmgr.Spec{
		Name:     "onnx",
		Path:     filepath.Join(cfg.Paths.Plugins, "azaion-plugin-onnx"),
		Plugins:  backend.PluginSet(nil),
		Dispense: backend.PluginName,
		Env:      []string{sdkplugin.ConfigEnv + "=" + onnxPluginConfig(cfg)},
	}
	tr := pluginmgr.Spec{
		Name:     "trainer",
		Path:     filepath.Join(cfg.Paths.Plugins, "azaion-plugin-trainer"),
		Plugins:  trainer.PluginSet(nil),
		Dispense: trainer.PluginName,
	}
	return []pluginProbe{
		{name: "onnx", path: onnx.Path, enabled: cfg.ONNXEnabled(), spec: onnx},
		{name: "trainer", path: tr.Path, enabled: cfg.Trainer.Enabled, spec: tr},
	}
}

// onnxPluginConfig is the ONNX plugin's configuration as the daemon passes it.
func onnxPluginConfig(cfg *config.Config) string {
	c := cfg.ONNX
	b, _ := json.Marshal(map[string]any{
		"library":          c.Library,
		"intra_op_threads": c.IntraOpThreads,
		"inter_op_threads": c.InterOpThreads,
		"spinning":         c.Spinning,
		"max_batch":        c.MaxBatch,
		"batch_wait":       c.BatchWait.String(),
		"providers":        c.Providers,
		"fallback_cpu":     c.FallbackCPU,
	})
	return string(b)
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
	// Backend is the dispensed backend, valid inside probe's use function.
	Backend backend.Backend
}

// probe launches the plugin once with its checksum verified, as the daemon
// does, asks for its Info, runs use (if any) while it runs, and stops it. A
// plugin that cannot start returns the reason it gave on stderr.
func (pp pluginProbe) probe(ctx context.Context, timeout time.Duration, use func(ctx context.Context, f *pluginFacts) error) (*pluginFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "azaion-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var stderr syncBuffer
	spec := pp.spec
	spec.Stderr = &stderr
	spec.LogLevel = "off" // its log lines are read from Stderr instead
	spec.TempDir = filepath.Join(tmp, "tmp")
	spec.MinBackoff, spec.MaxBackoff = time.Hour, time.Hour // one launch only
	result := make(chan error, 1)
	var facts *pluginFacts
	spec.OnStart = func(ctx context.Context, impl any) error {
		f, err := describe(ctx, impl)
		if err == nil && use != nil {
			err = use(ctx, f)
		}
		facts = f
		result <- err
		return err
	}
	p := pluginmgr.New(spec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-result:
			if err != nil {
				return facts, err
			}
			return facts, nil
		case <-ctx.Done():
			return nil, launchError(fmt.Sprintf("no answer within %s", timeout), stderr.String())
		case <-tick.C:
			if st := p.Status(); st.State == pluginmgr.StateDown {
				return nil, launchError(st.LastError, stderr.String())
			}
		}
	}
}

// describe asks a dispensed plugin what it is.
func describe(ctx context.Context, impl any) (*pluginFacts, error) {
	switch v := impl.(type) {
	case backend.Backend:
		info, err := v.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("info: %w", err)
		}
		f := &pluginFacts{Version: info.Version, APIVersions: info.APIVersions, Providers: info.Providers, Backend: v}
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
	case trainer.Trainer:
		info, err := v.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("info: %w", err)
		}
		f := &pluginFacts{Version: info.Version, APIVersions: info.APIVersions}
		if !slices.Contains(info.APIVersions, trainer.APIVersion) {
			return f, fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, trainer.APIVersion)
		}
		return f, nil
	}
	return nil, fmt.Errorf("dispensed %T, which is not a known plugin kind", impl)
}

// launchError says why a plugin did not start: what it said on stderr when it
// said something (go-plugin's own message is then generic), else the first
// line of the launcher's error.
func launchError(launcher, stderr string) error {
	if r := reason(stderr); r != "" {
		return errors.New(r)
	}
	first, _, _ := strings.Cut(launcher, "\n")
	return errors.New(strings.TrimSpace(first))
}

// reason picks what a plugin said about its failure from its stderr: its last
// error-level log line, else its last line that is not a log line (such as
// the dynamic loader's "error while loading shared libraries").
func reason(stderr string) string {
	var lastErr, lastRaw string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			lastRaw = line
			continue
		}
		if lvl, _ := entry["@level"].(string); lvl != "error" {
			continue
		}
		msg, _ := entry["@message"].(string)
		if e, ok := entry["error"].(string); ok {
			msg += ": " + e
		}
		lastErr = msg
	}
	switch {
	case lastErr != "":
		return lastErr
	case lastRaw != "":
		return lastRaw
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep the tail
		b.buf.Next(b.buf.Len() - 512<<10)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
