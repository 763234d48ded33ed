package imaging

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestPool(t *testing.T) {
	p := NewPool(2, false)
	defer p.Close()
	var running, peak, calls atomic.Int64
	f := func(int) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		calls.Add(1)
		running.Add(-1)
	}
	// Three callers at once share two workers.
	done := make(chan struct{})
	for range 3 {
		go func() {
			if n, err := p.Do(context.Background(), 4, f); n != 4 || err != nil {
				t.Errorf("Do: %d started, %v", n, err)
			}
			done <- struct{}{}
		}()
	}
	for range 3 {
		<-done
	}
	if calls.Load() != 12 || peak.Load() > 2 {
		t.Errorf("%d calls, %d at once; want 12 calls, at most 2 at once", calls.Load(), peak.Load())
	}
	// A cancelled context starts nothing more; the first calls are the ones made.
	ctx, cancel := context.WithCancel(context.Background())
	var seen [10]atomic.Bool
	n, err := p.Do(ctx, 10, func(i int) {
		seen[i].Store(true)
		if i == 2 {
			cancel()
		}
		time.Sleep(2 * time.Millisecond)
	})
	if !errors.Is(err, context.Canceled) || n < 3 || n == 10 {
		t.Errorf("cancelled Do: %d started, %v", n, err)
	}
	for i := range seen {
		if seen[i].Load() != (i < n) {
			t.Errorf("call %d made = %v with %d started", i, seen[i].Load(), n)
		}
	}
	p.Close()
	if n, err := p.Do(context.Background(), 1, f); n != 0 || err == nil {
		t.Errorf("Do after Close: %d, %v", n, err)
	}
}

// niceOf returns the niceness of the calling thread.
func niceOf(t *testing.T) int {
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - prio // the raw syscall returns 20 - nice
}

// TestPoolPriority: a low-priority pool's workers run at LowPriorityNice; a
// normal one's at the process's niceness.
func TestPoolPriority(t *testing.T) {
	var base int
	runtime.LockOSThread()
	base = niceOf(t)
	runtime.UnlockOSThread()
	for _, tc := range []struct {
		low  bool
		want int
	}{{true, LowPriorityNice}, {false, base}} {
		p := NewPool(1, tc.low)
		var got int
		p.Do(context.Background(), 1, func(int) { got = niceOf(t) })
		p.Close()
		if got != tc.want {
			t.Errorf("low priority %v: worker niceness %d, want %d", tc.low, got, tc.want)
		}
	}
}
