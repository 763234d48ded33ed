// Package cthread runs long C calls on kept threads of their own, while the
// calling goroutine waits in Go's network poller rather than in a cgo call.
//
// A goroutine in a cgo call keeps its P. While another P is idle, Go's
// sysmon thread looks at it every 20 µs for the first millisecond after
// each wake from its deep sleep (which a cgo call's start causes), then
// less and less often, and hands the P off only after 10 ms. On a 2-core
// machine each of those wakes preempts one of the two threads doing the
// work, and ONNX Runtime's parallel sections (hundreds per inference) wait
// for the slower thread. Measured in the ONNX plugin at one image at a
// time (bus.jpg, 2-core VM): sysmon woke ~40 times per image and the
// runtime's worker thread was preempted ~10 times per inference; the
// inference ran 1-3 ms slower than the bare session's and the two-thread
// decode 0.4 ms slower than from a thread of its own. A goroutine parked
// on an eventfd leaves its P idle, so with nothing else to run sysmon
// sleeps until the call ends; the wake at the end costs one poller round
// (tens of microseconds).
package cthread

// #include "cthread.h"
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thread is one kept thread. Its calls run one at a time.
type Thread struct {
	t   *C.cthread
	f   *os.File // the eventfd the thread writes when a call returns
	buf [8]byte
}

// New starts a thread at the calling thread's niceness.
func New() (*Thread, error) { return newThread(callerNice()) }

// callerNice is the niceness of the calling goroutine's OS thread (a
// goroutine locked to a thread it lowered, as imaging's low-priority
// decoders are, has its own).
func callerNice() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0) // the calling thread: 20 - nice
	if err != nil {
		return 0
	}
	return 20 - p
}

func newThread(nice int) (*Thread, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cthread: eventfd: %w", err)
	}
	t := C.cthread_new(C.int(fd), C.int(nice))
	if t == nil {
		unix.Close(fd)
		return nil, errors.New("cthread: cannot start a thread")
	}
	return &Thread{t: t, f: os.NewFile(uintptr(fd), "cthread")}, nil
}

// Call runs fn(arg) on the thread and returns when it has returned. fn is
// a C function void (*)(void *) (unsafe.Pointer(C.name)); arg is C memory
// or Go memory pinned (runtime.Pinner) until Call returns, and so is
// everything it points to. Calls on one Thread must not overlap.
func (t *Thread) Call(fn, arg unsafe.Pointer) error {
	if C.cthread_submit(t.t, (*[0]byte)(fn), arg) != 0 {
		return errors.New("cthread: the thread is busy or closed")
	}
	if _, err := io.ReadFull(t.f, t.buf[:]); err != nil {
		// Only a closed file fails here; the call still runs, and Close
		// waits for it.
		return fmt.Errorf("cthread: wait for the call: %w", err)
	}
	return nil
}

// Close ends the thread, after the call it runs, if any.
func (t *Thread) Close() {
	C.cthread_free(t.t)
	t.f.Close()
}

// Pool keeps idle threads for callers that need one per call at a time.
// A call runs on a thread of the caller's niceness (see New), so a
// low-priority caller's work stays low-priority.
type Pool struct {
	mu   sync.Mutex
	max  int
	idle map[int][]*Thread // by niceness
}

// NewPool returns a pool that keeps up to max idle threads of each
// niceness.
func NewPool(max int) *Pool { return &Pool{max: max, idle: map[int][]*Thread{}} }

// Call runs fn(arg) (see Thread.Call) on an idle thread of the pool, or on
// a new one when none is idle.
func (p *Pool) Call(fn, arg unsafe.Pointer) error {
	nice := callerNice()
	p.mu.Lock()
	var t *Thread
	if idle := p.idle[nice]; len(idle) > 0 {
		t = idle[len(idle)-1]
		p.idle[nice] = idle[:len(idle)-1]
	}
	p.mu.Unlock()
	if t == nil {
		var err error
		if t, err = newThread(nice); err != nil {
			return err
		}
	}
	err := t.Call(fn, arg)
	p.mu.Lock()
	if len(p.idle[nice]) < p.max {
		p.idle[nice] = append(p.idle[nice], t)
		t = nil
	}
	p.mu.Unlock()
	if t != nil {
		t.Close()
	}
	return err
}
