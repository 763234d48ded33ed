package cthread

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// alive reports whether this process has a thread tid.
func alive(tid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid))
	return err == nil
}

// gone waits up to 5 s until no more than keep of tids are threads of this
// process (a joined thread leaves /proc a moment after the join returns,
// longer under qemu), and returns how many are left.
func gone(tids []int, keep int) int {
	left := len(tids)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		left = 0
		for _, tid := range tids {
			if alive(tid) {
				left++
			}
		}
		if left <= keep {
			break
		}
	}
	return left
}

// waitState waits until a goroutine whose stack mentions fn is in state
// (as runtime.Stack names it: "IO wait", "syscall"...), and returns
// whether it was seen within 5 s.
func waitState(fn, state string) bool {
	buf := make([]byte, 1<<20)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(strings.SplitN(g, "\n", 2)[0], "["+state) {
				return true
			}
		}
	}
	return false
}

// startThread starts a Thread that the test closes at its end.
func startThread(t *testing.T) *Thread {
	t.Helper()
	th, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Close)
	return th
}

// testProbe is a probe freed at the end of the test (every call on it has
// returned by then).
func testProbe(t *testing.T, sleepUS int) *probe {
	p := newProbe(sleepUS)
	t.Cleanup(p.free)
	return p
}

func TestCallRunsOnAKeptThread(t *testing.T) {
	th := startThread(t)
	p := testProbe(t, 0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()
	var tid int
	for i := 1; i <= 5; i++ {
		if err := th.Call(p.fn(), p.arg()); err != nil {
			t.Fatal(err)
		}
		if p.calls() != i {
			t.Fatalf("after %d calls the function ran %d times", i, p.calls())
		}
		if p.tid() == self {
			t.Fatal("the function ran on the calling thread")
		}
		if i > 1 && p.tid() != tid {
			t.Fatalf("call %d ran on thread %d, the previous ones on %d: the thread is not kept", i, p.tid(), tid)
		}
		tid = p.tid()
	}
}

// TestCallerWaitsInThePoller: while the C function runs, the calling
// goroutine is parked in Go's network poller ("IO wait"), which is the point
// of the package: a goroutine in a cgo call is never in that state (it
// shows as "syscall", or as running with no stack).
// The calls sleep a second: long enough to be seen under a loaded CI.
func TestCallerWaitsInThePoller(t *testing.T) {
	th := startThread(t)
	p := testProbe(t, 1_000_000)
	done := make(chan error, 1)
	go func() { done <- callForTest(th, p) }()
	if !waitState("callForTest", "IO wait") {
		t.Error("the calling goroutine was never seen waiting in the poller during the call")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.calls() != 1 {
		t.Fatalf("the function ran %d times, want 1", p.calls())
	}
}

// callForTest is a named frame for waitState.
func callForTest(th *Thread, p *probe) error { return th.Call(p.fn(), p.arg()) }

func TestCallOnABusyThreadFails(t *testing.T) {
	th := startThread(t)
	p, q := testProbe(t, 1_000_000), testProbe(t, 0)
	done := make(chan error, 1)
	go func() { done <- callForTest(th, p) }()
	if !waitState("callForTest", "IO wait") {
		t.Fatal("the first call never started")
	}
	if err := th.Call(q.fn(), q.arg()); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("a call beside a running one: err = %v, want one saying the thread is busy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.calls() != 1 || q.calls() != 0 {
		t.Fatalf("calls: first %d (want 1), second %d (want 0)", p.calls(), q.calls())
	}
}

// TestCloseWaitsForTheCall: Close returns after the running call has, and
// the thread is gone.
func TestCloseWaitsForTheCall(t *testing.T) {
	th, err := New()
	if err != nil {
		t.Fatal(err)
	}
	p := testProbe(t, 200_000)
	done := make(chan error, 1)
	go func() { done <- callForTest(th, p) }()
	if !waitState("callForTest", "IO wait") {
		t.Fatal("the call never started")
	}
	th.Close()
	if p.calls() != 1 {
		t.Fatalf("Close returned with the call not done (%d calls)", p.calls())
	}
	<-done // nil, or an error for the eventfd closed under it
	if gone([]int{p.tid()}, 0) != 0 {
		t.Fatalf("thread %d that ran the call is still there after Close", p.tid())
	}
}

func TestPoolReusesThreads(t *testing.T) {
	pool := NewPool(2)
	p := testProbe(t, 0)
	if err := pool.Call(p.fn(), p.arg()); err != nil {
		t.Fatal(err)
	}
	tid := p.tid()
	for range 50 {
		if err := pool.Call(p.fn(), p.arg()); err != nil {
			t.Fatal(err)
		}
		if p.tid() != tid {
			t.Fatalf("a lone caller's calls ran on threads %d and %d", tid, p.tid())
		}
	}
	// Callers at once get threads of their own; the pool keeps two.
	var wg sync.WaitGroup
	probes := []*probe{testProbe(t, 50_000), testProbe(t, 50_000), testProbe(t, 50_000)}
	for _, q := range probes {
		wg.Go(func() {
			if err := pool.Call(q.fn(), q.arg()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, q := range probes {
		seen[q.tid()] = true
		if q.calls() != 1 {
			t.Fatalf("a concurrent call ran %d times", q.calls())
		}
	}
	if len(seen) != 3 {
		t.Fatalf("3 calls at once ran on %d threads, want 3", len(seen))
	}
	if left := gone(slices.Collect(maps.Keys(seen)), 2); left != 2 {
		t.Fatalf("%d of the 3 threads are left after the calls; want 2 (the pool keeps two)", left)
	}
}

// TestPoolKeepsTheCallersNiceness: a call from a thread at niceness 7 runs
// on a thread at 7, one from a thread at 0 on another thread at 0.
func TestPoolKeepsTheCallersNiceness(t *testing.T) {
	pool := NewPool(2)
	p, q := testProbe(t, 0), testProbe(t, 0)
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine, niceness and all
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 7); err != nil {
			done <- err
			return
		}
		done <- pool.Call(p.fn(), p.arg())
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := pool.Call(q.fn(), q.arg()); err != nil {
		t.Fatal(err)
	}
	if p.nice() != 7 || q.nice() != 0 {
		t.Fatalf("niceness of the calls: %d from a caller at 7, %d from one at 0", p.nice(), q.nice())
	}
	if p.tid() == q.tid() {
		t.Fatal("callers of different niceness shared a thread")
	}
}
