package jobs

import (
	"context"
	"fmt"

	"github.com/azaion/edge/sdk/trainer"
)

// PluginGetter returns the dispensed plugin while it runs
// (pluginmgr.Plugin satisfies it).
type PluginGetter interface {
	Get() (any, error)
}

// PluginRunner returns a Runner that runs each job on the trainer plugin p
// holds at that moment, so a relaunched plugin serves the next job.
func PluginRunner(p PluginGetter) Runner { return pluginRunner{p} }

type pluginRunner struct{ p PluginGetter }

func (r pluginRunner) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	impl, err := r.p.Get()
	if err != nil {
		return fmt.Errorf("trainer plugin: %w", err)
	}
	t, ok := impl.(trainer.Trainer)
	if !ok {
		return fmt.Errorf("trainer plugin: dispensed %T, not a trainer", impl)
	}
	return t.StartJob(ctx, spec, emit)
}
