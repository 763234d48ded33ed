package jobs

import (
	"context"
	"fmt"

	"github.com/azaion/edge/sdk/trainer"
)

// TrainerGetter returns the trainer plugin's client while it runs
// (*pluginmgr.Plugin[trainer.Trainer] satisfies it).
type TrainerGetter interface {
	Get() (trainer.Trainer, error)
}

// PluginRunner returns a Runner that runs each job on the trainer plugin p
// holds at that moment, so a relaunched plugin serves the next job.
func PluginRunner(p TrainerGetter) Runner { return pluginRunner{p} }

type pluginRunner struct{ p TrainerGetter }

func (r pluginRunner) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	t, err := r.p.Get()
	if err != nil {
		return fmt.Errorf("trainer plugin: %w", err)
	}
	return t.StartJob(ctx, spec, emit)
}
