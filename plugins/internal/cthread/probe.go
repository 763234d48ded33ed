package cthread

/*
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// cthread_probe is what cthread_probe_run did, for the package's tests.
typedef struct {
	int ncalls, sleep_us, nice;
	long thread;
} cthread_probe;

void cthread_probe_run(void *arg) {
	cthread_probe *p = arg;
	if (p->sleep_us) usleep(p->sleep_us);
	p->ncalls++;
	p->thread = syscall(SYS_gettid);
	p->nice = getpriority(PRIO_PROCESS, 0);
}
*/
import "C"

import "unsafe"

// probe is a C call for the tests: it sleeps for sleepUS, counts its calls
// and records the thread that ran it and its niceness. Its state is C memory.
type probe struct{ c *C.cthread_probe }

// newProbe allocates a probe; free it with its free method.
func newProbe(sleepUS int) *probe {
	p := &probe{(*C.cthread_probe)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cthread_probe{}))))}
	p.c.sleep_us = C.int(sleepUS)
	return p
}

func (p *probe) free()               { C.free(unsafe.Pointer(p.c)) }
func (p *probe) calls() int          { return int(p.c.ncalls) }
func (p *probe) tid() int            { return int(p.c.thread) }
func (p *probe) nice() int           { return int(p.c.nice) }
func (p *probe) fn() unsafe.Pointer  { return unsafe.Pointer(C.cthread_probe_run) }
func (p *probe) arg() unsafe.Pointer { return unsafe.Pointer(p.c) }
