package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// stopWait bounds how long a cancelled job may take to stop in the plugin
// (the training worker gets 15 s before its process group is killed)
// before the daemon drops the job's stream.
const stopWait = time.Minute

// StartJob runs the job on the plugin. Cancelling ctx asks the plugin to
// cancel the job (Cancel) and waits for the job's stream to end, so a
// cancelled job is over (its training worker stopped, its checkpoint
// written) when StartJob returns; only a plugin that does not answer in
// stopWait has the stream dropped under it.
func (r pluginRunner) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	t, err := r.p.Get()
	if err != nil {
		return fmt.Errorf("trainer plugin: %w", err)
	}
	sctx, drop := context.WithCancel(context.Background())
	defer drop()
	done := make(chan error, 1)
	go func() { done <- t.StartJob(sctx, spec, emit) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cerr := t.Cancel(cctx, spec.ID)
	cancel()
	if cerr != nil && !errors.Is(cerr, trainer.ErrUnknownJob) {
		drop()
	}
	select {
	case err := <-done:
		if err == nil {
			return nil // it finished before the cancel reached it
		}
		return ctx.Err()
	case <-time.After(stopWait):
		drop()
		<-done
		return ctx.Err()
	}
}
