#ifndef AZAION_CTHREAD_H
#define AZAION_CTHREAD_H

// A kept POSIX thread that runs one C function at a time for Go and then
// writes to an eventfd (see cthread.go).
typedef struct cthread cthread;

// cthread_new starts a thread at niceness nice (when it may set it; else
// the calling thread's, which it inherits).
cthread *cthread_new(int efd, int nice);
// cthread_submit hands fn(arg) to t; 0 when started, -1 when t is busy.
int cthread_submit(cthread *t, void (*fn)(void *), void *arg);
// cthread_free ends t's thread, after the call it runs, if any.
void cthread_free(cthread *t);

#endif
