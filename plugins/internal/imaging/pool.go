package imaging

import (
	"context"
	"runtime"
	"sync"
	"syscall"
)

// Pool runs image decoding on a fixed number of goroutines, so decoding
// never takes more cores than it is given however many requests arrive at
// once, and the images of the next batch decode while the runtime runs the
// current one (size it with sdk/pluginconfig.DefaultDecodeThreads). It is
// safe for concurrent use.
type Pool struct {
	jobs chan func()
	size int
	wg   sync.WaitGroup
	once sync.Once
	stop chan struct{}
}

// LowPriorityNice is the niceness of a low-priority pool's threads: the
// weakest, so that they run when the inference runtime's threads leave a
// core idle and never preempt them (a preempted runtime thread stalls the
// others at the next barrier).
const LowPriorityNice = 19

// NewPool starts a pool of n workers (n < 1 means 1). With lowPriority each
// worker runs on its own OS thread at niceness LowPriorityNice: decoding
// then fills the gaps the runtime leaves (it is never starved by the
// runtime, whose threads sleep when it has nothing to run, and nothing to
// run is what a starved decoder causes).
func NewPool(n int, lowPriority bool) *Pool {
	n = max(n, 1)
	p := &Pool{jobs: make(chan func()), size: n, stop: make(chan struct{})}
	for range n {
		p.wg.Go(func() {
			if lowPriority {
				// The thread stays locked: it ends with the worker rather
				// than carry its niceness to other goroutines.
				runtime.LockOSThread()
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), LowPriorityNice)
			}
			for {
				select {
				case f := <-p.jobs:
					f()
				case <-p.stop:
					return
				}
			}
		})
	}
	return p
}

// Size returns the number of workers.
func (p *Pool) Size() int { return p.size }

// Do runs f(i) for i in [0, n) on the pool's workers and returns when every
// started call has returned. Calls not yet started when ctx ends or the pool
// closes are not made; Do then returns ctx.Err() (or context.Canceled after
// Close) and the number of calls started, which are always the first ones.
func (p *Pool) Do(ctx context.Context, n int, f func(i int)) (int, error) {
	var wg sync.WaitGroup
	started := 0
	var err error
	for i := range n {
		if err = ctx.Err(); err != nil {
			break
		}
		wg.Add(1)
		job := func() { defer wg.Done(); f(i) }
		select {
		case p.jobs <- job:
			started++
			continue
		case <-ctx.Done():
			err = ctx.Err()
		case <-p.stop:
			err = context.Canceled
		}
		wg.Done()
		break
	}
	wg.Wait()
	return started, err
}

// Close stops the workers once they finish their current call.
func (p *Pool) Close() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
	})
}
