#include "cthread.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct cthread {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int efd, nice;
	int busy, quit; // a call handed over and not yet returned; cthread_free called
	void (*fn)(void *);
	void *arg;
};

static void *cthread_main(void *p) {
	cthread *t = p;
	setpriority(PRIO_PROCESS, 0, t->nice); // this thread (Linux)
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->busy && !t->quit) pthread_cond_wait(&t->cv, &t->mu);
		if (!t->busy) break; // quit, and nothing left to run
		pthread_mutex_unlock(&t->mu);
		t->fn(t->arg);
		pthread_mutex_lock(&t->mu);
		t->busy = 0;
		// An eventfd counter fails to take 1 only at its maximum, which one
		// write per call never reaches.
		uint64_t one = 1;
		while (write(t->efd, &one, sizeof one) < 0 && errno == EINTR) {
		}
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

cthread *cthread_new(int efd, int nice) {
	cthread *t = calloc(1, sizeof *t);
	if (!t) return NULL;
	t->efd = efd;
	t->nice = nice;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->th, NULL, cthread_main, t)) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return NULL;
	}
	return t;
}

int cthread_submit(cthread *t, void (*fn)(void *), void *arg) {
	pthread_mutex_lock(&t->mu);
	if (t->busy || t->quit) {
		pthread_mutex_unlock(&t->mu);
		return -1;
	}
	t->fn = fn;
	t->arg = arg;
	t->busy = 1;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void cthread_free(cthread *t) {
	pthread_mutex_lock(&t->mu);
	t->quit = 1;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->th, NULL); // after the call it runs, if any
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
