package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/pluginconfig"
	"github.com/azaion/edge/sdk/trainer"
)

// PluginSpec returns how the daemon launches the trainer plugin
// (azaion-plugin-trainer in the plugin folder) with its configuration: it
// checks the plugin's API version on every launch and uses Info as the
// health check.
func PluginSpec(cfg *config.Config) (pluginmgr.Spec[trainer.Trainer], error) {
	tc := cfg.Trainer.Trainer
	// The gate evaluates ONNX artifacts with the daemon's ONNX Runtime.
	tc.ONNXLibrary = cfg.ONNX.Library
	env, err := pluginconfig.Encode(&tc)
	if err != nil {
		return pluginmgr.Spec[trainer.Trainer]{}, err
	}
	return pluginmgr.Spec[trainer.Trainer]{
		Name:     "trainer",
		Path:     filepath.Join(cfg.Paths.Plugins, "azaion-plugin-trainer"),
		Plugins:  trainer.PluginSet(nil),
		Dispense: trainer.PluginName,
		Env:      []string{env},
		LogLevel: cfg.Log.Level,
		TempDir:  filepath.Join(cfg.Paths.State, "tmp", "plugin-trainer"),
		// Jobs run for hours: only the start is bounded.
		StartTimeout: cfg.Limits.PluginStartTimeout,
		OnStart: func(ctx context.Context, t trainer.Trainer) error {
			info, err := t.Info(ctx)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			if !slices.Contains(info.APIVersions, trainer.APIVersion) {
				return fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, trainer.APIVersion)
			}
			return nil
		},
		Health: func(ctx context.Context, t trainer.Trainer) error {
			_, err := t.Info(ctx)
			return err
		},
	}, nil
}

// Defaults returns the configured job parameters per job type.
func Defaults(cfg *config.Config) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for typ, v := range map[trainer.JobType]any{
		trainer.JobValidate: cfg.Trainer.Validate,
		trainer.JobAugment:  cfg.Trainer.AugmentParams(),
		trainer.JobDataset:  cfg.Trainer.Dataset,
		trainer.JobTrain:    cfg.Trainer.Train,
		trainer.JobExport:   cfg.Trainer.Export,
		trainer.JobGate:     cfg.Trainer.Gate,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			continue
		}
		// The run a job works on is the request's, never a default.
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil {
			delete(obj, "run")
			b, _ = json.Marshal(obj)
		}
		out[string(typ)] = b
	}
	return out
}
