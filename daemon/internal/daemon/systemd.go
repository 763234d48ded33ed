package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/sdnotify"
)

// notifySystemd tells systemd (Type=notify) that the daemon is ready once its
// listeners are open, feeds the watchdog (WatchdogSec=) while the scheduler
// answers, and says STOPPING when ctx ends. Outside systemd it does nothing.
func (d *Daemon) notifySystemd(ctx context.Context, wg *sync.WaitGroup) {
	if sent, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		d.log.Warn("systemd notify", "error", err)
	} else if !sent {
		return
	}
	wg.Go(func() {
		err := sdnotify.KeepAlive(ctx, d.alive, func(err error) { d.log.Warn("watchdog keep-alive withheld", "error", err) })
		if err != nil {
			d.log.Warn("watchdog", "error", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		_, _ = sdnotify.Notify(sdnotify.Stopping)
	})
}

// alive returns nil when the scheduler answers within 5 seconds: a daemon
// whose scheduler is stuck stops feeding the watchdog and systemd restarts it.
func (d *Daemon) alive(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		d.sched.Models()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return errors.New("the scheduler did not answer within 5s")
	}
}
