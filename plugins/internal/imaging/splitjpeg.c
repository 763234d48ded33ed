// Decoding one baseline JPEG on two threads.
//
// Most of a JPEG decode at a reduced DCT scale is Huffman decoding, which is
// sequential: each code starts where the previous one ends, and a JPEG
// without restart markers says nowhere where a row of blocks begins. But
// Huffman codes resynchronise: a decoder started at an arbitrary bit decodes
// garbage for a while and then, almost always within a few hundred bytes,
// lands on a true MCU boundary, from where it decodes exactly what a decoder
// started at the beginning decodes (only the DC predictors differ, by a
// constant per component). So:
//
//   - the entropy-coded data is unstuffed (0xFF00 -> 0xFF) into one buffer;
//   - a worker thread decodes from a bit in its middle to its end, recording
//     where each MCU it decodes starts, its DC predictors there and its
//     coefficients;
//   - the calling thread runs libjpeg's own pipeline (inverse DCT at the
//     scale, upsampling, colour conversion: the same code as TurboJPEG's, so
//     the pixels are the same bit for bit) with libjpeg's Huffman decoder
//     replaced by decode_mcu below, which decodes from the beginning; once it
//     passes the worker's start it checks, at each MCU, whether the worker
//     started an MCU at the very same bit. From that MCU on the worker's
//     decode is the true one: the calling thread copies its coefficients
//     (the DC ones shifted by the predictor difference) instead of decoding,
//     and decodes itself any MCU the worker has not reached yet.
//
// A JPEG with restart markers says where its rows of MCUs start (at least
// some of them: where an interval starts a row), and each interval decodes
// on its own, so such a JPEG is split by rows instead (rowworker below): the
// second thread runs a pipeline of its own (libjpeg's, from a copy of the
// header with the height of the rows it decodes) over the bottom part, from
// one MCU row above it (the upsampling of its first rows reads that row),
// and the calling thread runs the top part down to where the second thread's
// rows begin; each decodes the Huffman codes of its own part too. Every
// pixel comes from the same arithmetic as in a one-thread decode, and the
// whole decode is about twice as fast instead of a fifth.
//
// Nothing is trusted that was not checked: an MCU is taken from the worker
// only where its start equals the true position, so a worker that never
// synchronises only costs the CPU it used. Any irregularity in the true
// stream (a bad code, data ending early, a libjpeg warning) makes the whole
// decode return "not taken", and the caller decodes the image with
// TurboJPEG, which has libjpeg's answers for damaged files.
#include "splitjpeg.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>

#include "cv.h"
#include <jerror.h>
#include <jpegint.h>

#define LOOK 12 // bits of the fast Huffman lookup
#define PAD 1024 // zero bytes after the unstuffed data (a block reads at most 256 bytes ahead)
#define MAXBLK 10 // blocks per MCU (libjpeg's D_MAX_BLOCKS_IN_MCU)

// natural maps a zigzag index to its position in the 8x8 block.
static const unsigned char natural[64] = {
	0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
	41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
	30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

// htab is a Huffman table ready for decoding.
typedef struct {
	// The codes of up to LOOK bits, indexed by the next LOOK bits, 0 for
	// longer ones. DC: length << 8 | symbol. AC: run << 8 | value bits << 4
	// | length (the symbol split, so that the decoding loop needs no
	// second lookup).
	uint16_t look[1 << LOOK];
	int32_t maxcode[18];       // the largest code of each length, -1 when none
	int32_t valoff[17];        // symbol index of a code of each length: code + valoff
	uint8_t val[256];
} htab;

// build derives t from a DHT table; it returns 0 when the table is not a
// valid one.
static int build(htab *t, const JHUFF_TBL *src, int dc) {
	uint8_t size[257];
	uint32_t code[257];
	int n = 0;
	memset(t, 0, sizeof(*t));
	for (int l = 1; l <= 16; l++) {
		for (int i = 0; i < src->bits[l]; i++) {
			if (n >= 256) return 0;
			size[n++] = (uint8_t)l;
		}
	}
	size[n] = 0;
	for (int i = 0; i < n; i++) {
		t->val[i] = src->huffval[i];
		// No 8-bit coefficient needs more value bits (DC differences 11, AC
		// values 10); block counts on it. A table with more is left to
		// TurboJPEG.
		if (dc ? src->huffval[i] > 11 : (src->huffval[i] & 15) > 10) return 0;
	}
	uint32_t c = 0;
	int si = size[0], p = 0;
	while (size[p]) {
		while (size[p] == si) code[p++] = c++;
		if (c >= (1u << si)) return 0; // codes overflow their length
		c <<= 1;
		si++;
	}
	p = 0;
	for (int l = 1; l <= 16; l++) {
		if (src->bits[l]) {
			t->valoff[l] = p - (int32_t)code[p];
			p += src->bits[l];
			t->maxcode[l] = (int32_t)code[p - 1];
		} else {
			t->maxcode[l] = -1;
		}
	}
	t->maxcode[17] = INT32_MAX;
	for (p = 0; p < n; p++) {
		int l = size[p];
		if (l > LOOK) continue;
		uint32_t first = code[p] << (LOOK - l);
		for (uint32_t i = 0; i < (1u << (LOOK - l)); i++) {
			uint32_t idx = first + i;
			t->look[idx] = (uint16_t)(dc ? l << 8 | t->val[p] : (t->val[p] >> 4) << 9 | (t->val[p] & 15) << 5 | (l + (t->val[p] & 15)));
		}
	}
	return 1;
}

// bitr reads bits, first bit highest: acc holds n of them at its top
// (refilled to at least 56 before each code, so a code and its value bits,
// at most 31, need no further read), p the byte that starts at bit n of acc.
typedef struct {
	const uint8_t *p;
	uint64_t acc;
	unsigned n;
} bitr;

static inline void refill(bitr *r) {
	uint64_t v;
	memcpy(&v, r->p, 8);
	r->acc |= __builtin_bswap64(v) >> r->n;
	r->p += (63 - r->n) >> 3;
	r->n |= 56;
}

static inline void bitr_at(bitr *r, const uint8_t *buf, uint64_t pos) {
	r->p = buf + (pos >> 3);
	r->acc = 0;
	r->n = 0;
	refill(r);
	r->acc <<= pos & 7;
	r->n -= (unsigned)(pos & 7);
}

static inline uint64_t bitr_pos(const bitr *r, const uint8_t *buf) { return (uint64_t)(r->p - buf) * 8 - r->n; }

static inline void skip(bitr *r, unsigned k) {
	r->acc <<= k;
	r->n -= k;
}

// longsym decodes a Huffman symbol whose code is longer than LOOK bits
// from the top of bits; -1 when no code matches.
static inline int longsym(const htab *t, uint64_t bits, int *len) {
	for (int l = LOOK + 1; l <= 16; l++) {
		int32_t code = (int32_t)(bits >> (64 - l));
		if (code <= t->maxcode[l]) {
			*len = l;
			return t->val[(code + t->valoff[l]) & 255];
		}
	}
	return -1;
}

// dcsym decodes one DC symbol from the top of bits; -1 when no code matches.
static inline int dcsym(const htab *t, uint64_t bits, int *len) {
	unsigned e = t->look[bits >> (64 - LOOK)];
	if (e) {
		*len = (int)(e >> 8);
		return (int)(e & 255);
	}
	return longsym(t, bits, len);
}

// value returns the s (at least 1) value bits that follow the first l bits
// of b as a coefficient: a leading 0 makes it negative (JPEG's EXTEND),
// here without a branch.
static inline int value(uint64_t b, unsigned l, unsigned s) {
	uint64_t t = b << l;
	return (int)(t >> (64 - s)) - (int)(((uint32_t)(t >> 63) - 1) & ((1u << s) - 1));
}

// acsym decodes one AC symbol from r (which must hold at least 26 bits)
// into blk, or into coef (see block), at *k: 0 when the block goes on, 1 at
// its end, -1 for an invalid symbol.
static inline __attribute__((always_inline)) int acsym(bitr *r, const htab *ac, int *kp, uint64_t need, uint32_t *coef,
                                                       int *np, JCOEF *blk) {
	uint64_t b = r->acc;
	unsigned e = ac->look[b >> (64 - LOOK)], l, run, s;
	if (e) {
		s = (e >> 5) & 15;
		run = e >> 9;
		skip(r, e & 31);
		l = (e & 31) - s;
	} else { // a code longer than LOOK bits
		int len, rs = longsym(ac, b, &len);
		if (rs < 0) return -1;
		l = (unsigned)len;
		s = (unsigned)rs & 15;
		run = (unsigned)rs >> 4;
		skip(r, l + s);
	}
	if (!s) {
		if (run != 15) return 1; // end of block
		*kp += 16;
		return 0;
	}
	int k = *kp + (int)run;
	if (k > 63) return -1;
	int v = value(b, l, s);
	unsigned z = natural[k];
	if (blk) {
		blk[z] = (JCOEF)v; // those the inverse DCT does not read do no harm
	} else {
		coef[*np] = (uint32_t)(uint16_t)(int16_t)v << 16 | z; // kept when needed: no branch to mispredict
		*np += (int)(need >> z & 1);
	}
	*kp = k + 1;
	return 0;
}

// block decodes one block from rp: its DC difference, and its nonzero AC
// coefficients either into blk (natural order) or, when blk is NULL, as
// value << 16 | natural index in coef (at most 63), only those whose bit
// is set in need (natural order; see needmask). It returns the number of
// AC coefficients kept in coef, -1 for an invalid block. Inlined, so that
// each caller gets a loop without the other's branch.
static inline __attribute__((always_inline)) int block(bitr *rp, const htab *dc, const htab *ac, uint64_t need,
                                                        int *dcdiff, uint32_t *coef, JCOEF *blk) {
	// A local copy: stores to coef could alias *rp, which would keep the
	// reader in memory.
	bitr rl = *rp, *r = &rl;
	int len, n = 0;
	refill(r);
	int s = dcsym(dc, r->acc, &len);
	if (s < 0) goto bad;
	*dcdiff = s ? value(r->acc, (unsigned)len, (unsigned)s) : 0;
	skip(r, (unsigned)(len + s));
	// At most 16 + 11 bits of DC leave at least 29 for the first AC
	// symbol; then one refill (at least 56 bits) for two (an AC symbol
	// takes at most 16 + 10 bits: build refuses larger values).
	int k = 1, st = acsym(r, ac, &k, need, coef, &n, blk);
	while (!st && k < 64) {
		refill(r);
		if ((st = acsym(r, ac, &k, need, coef, &n, blk)) || k >= 64) break;
		st = acsym(r, ac, &k, need, coef, &n, blk);
	}
	if (st < 0) goto bad;
	*rp = rl;
	return n;
bad:
	*rp = rl;
	return -1;
}

// needmask returns the coefficients (bits in natural order) libjpeg's
// inverse DCT reads for an output block of size x size (jidctred.c: the
// 4x4 one skips row and column 4, the 2x2 one rows and columns 2, 4 and 6,
// the 1x1 one reads the DC only). The others are never stored: fewer to
// hand from one thread to the other.
static uint64_t needmask(int size) {
	static const unsigned char used4[8] = {1, 1, 1, 1, 0, 1, 1, 1}, used2[8] = {1, 1, 0, 1, 0, 1, 0, 1};
	if (size >= 8 || size == 3 || size > 4) return ~(uint64_t)0;
	uint64_t m = 0;
	for (int i = 0; i < 64; i++) {
		int row = i / 8, col = i % 8;
		int use = size == 4 ? used4[row] && used4[col] : size == 2 ? used2[row] && used2[col] : i == 0;
		if (use) m |= (uint64_t)1 << i;
	}
	return m;
}

// The second threads: kept from one decode to the next, waiting on a
// condition variable in between, rather than created for each decode. A
// thread created and ended for every image made the inference that followed
// it about 2 ms slower here (ONNX Runtime's own threads, woken right after
// a thread's exit, ran its first operators late); one that only sleeps and
// wakes does not. There are as many as two-thread decodes ever ran at once
// (one, as the plugins use them: a lone image).
typedef struct helper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void *(*fn)(void *); // the job (NULL: none), cleared when done
	void *arg;
	struct helper *next; // in the idle list
} helper;

static pthread_mutex_t helpers_mu = PTHREAD_MUTEX_INITIALIZER;
static helper *idle_helpers;
static atomic_int helpers_made;

int splitjpeg_helpers(void) { return atomic_load(&helpers_made); }

static void *helper_main(void *arg) {
	helper *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->fn)
			pthread_cond_wait(&h->cv, &h->mu);
		void *(*fn)(void *) = h->fn;
		pthread_mutex_unlock(&h->mu);
		fn(h->arg);
		pthread_mutex_lock(&h->mu);
		h->fn = NULL;
		pthread_cond_broadcast(&h->cv);
	}
	return NULL;
}

// helper_start runs fn(arg) on an idle helper thread, a new one when none
// is idle; NULL when no thread can be made.
static helper *helper_start(void *(*fn)(void *), void *arg) {
	pthread_mutex_lock(&helpers_mu);
	helper *h = idle_helpers;
	if (h) idle_helpers = h->next;
	pthread_mutex_unlock(&helpers_mu);
	if (!h) {
		if (!(h = calloc(1, sizeof(*h)))) return NULL;
		pthread_mutex_init(&h->mu, NULL);
		pthread_cond_init(&h->cv, NULL);
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&th, &at, helper_main, h);
		pthread_attr_destroy(&at);
		if (rc != 0) {
			pthread_cond_destroy(&h->cv);
			pthread_mutex_destroy(&h->mu);
			free(h);
			return NULL;
		}
		atomic_fetch_add(&helpers_made, 1);
	}
	pthread_mutex_lock(&h->mu);
	h->arg = arg;
	h->fn = fn;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return h;
}

// helper_join waits until h has run its job and makes it idle again.
static void helper_join(helper *h) {
	pthread_mutex_lock(&h->mu);
	while (h->fn)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_lock(&helpers_mu);
	h->next = idle_helpers;
	idle_helpers = h;
	pthread_mutex_unlock(&helpers_mu);
}

struct splitjpeg {
	// The unstuffed entropy-coded data, PAD zero bytes after it.
	uint8_t *data;
	size_t datalen, datacap;
	uint64_t databits;
	// With restart markers: the restart interval in MCUs and where each
	// interval's data starts (byte offsets in data).
	long long ri;
	uint64_t *seg;
	size_t nseg, segcap;

	// The scan: for each block of an MCU, its component and tables.
	int nblk;
	int comp[MAXBLK];
	uint64_t need[MAXBLK]; // coefficients the inverse DCT reads (needmask)
	htab *dc[MAXBLK], *ac[MAXBLK];
	htab tabs[8]; // DC 0-3, AC 0-3
	long long total; // MCUs in the scan

	// The worker's decode, from bit wbegin: MCU j starts at wstart[j] and
	// ends at wend[j] with the predictors wpred[j] at its start, its DC
	// values (running, from wpred) in wdc[j*nblk+b] and its AC coefficients
	// in wcoef[wcbeg[j]:wcend[j]] as value<<16 | block<<8 | index. done is
	// the number of MCUs published.
	uint64_t wbegin;
	long long wmax; // MCUs the worker may decode
	long long wm0;  // with restart markers, the MCU the worker starts at
	uint64_t *wstart, *wend;
	int32_t *wpred; // 4 per MCU
	int32_t *wdc;
	uint32_t *wcbeg, *wcend;
	uint32_t *wcoef;
	size_t mcucap, coefcap;

	// The calling thread's decode: on cache lines of its own, which it
	// writes at every MCU; the worker reads the fields above all the time
	// (sharing a line with these made its every block a cache miss).
	_Alignas(64) uint64_t pos;
	int32_t pred[4];
	long long mcu;
	int synced, useworker;
	struct helper *th; // the second thread (see helper_start)
	long long w, scan; // worker MCU of the current one once synced; scan position before
	int32_t delta[4];
	long long copied, lagged; // MCUs taken from the worker; decoded here after the sync (stats)
	long long moves;          // relocations of the worker (stats)
	long long seen;           // the last value of done read here

	// Written by the worker, read by the calling thread: each on its own
	// cache line, so that neither thread's other fields bounce between cores.
	_Alignas(64) atomic_llong done;
	_Alignas(64) atomic_int stop;
	// A move the calling thread asks for when it caught up with the worker
	// (see relocate): move is set once mvpos and mvm are written, cleared
	// by the worker when it has moved.
	_Alignas(64) atomic_int move;
	uint64_t mvpos;
	long long mvm;

	// The letterbox done beside the decode (NULL: none): rows is how many
	// output rows the calling thread has written; the worker, once its part
	// of the Huffman decoding is done, letterboxes the rows below it.
	imaging_lbjob *lb;
	_Alignas(64) atomic_int rows;

	// Split by rows (see the top of the file): the second thread decodes
	// from MCU rm0 (the first of the MCU row above its part) with the header
	// in hdr, and writes output rows rtop to oh of dst (rpm output rows per
	// MCU row); the calling thread writes rows 0 to rtop. brows is how many of its rows
	// the second thread has written, wfail set when it could not decode
	// them.
	int rowmode, rtop, rpm, ow, oh, pitch, num;
	long long rm0;
	unsigned char *dst;
	uint8_t *hdr;
	size_t hdrlen, hdrcap;
	unsigned char *scratch; // output rows the second thread does not keep
	size_t scratchcap;
	_Alignas(64) atomic_int brows;
	atomic_int wfail;
	atomic_llong wdone; // when the second thread wrote its last row (ns, now_ns)
};

splitjpeg *splitjpeg_new(void) {
	splitjpeg *s = aligned_alloc(64, (sizeof(splitjpeg) + 63) / 64 * 64);
	if (s) memset(s, 0, sizeof(*s));
	return s;
}

void splitjpeg_free(splitjpeg *s) {
	if (!s) return;
	free(s->data);
	free(s->seg);
	free(s->wstart);
	free(s->wend);
	free(s->wpred);
	free(s->wdc);
	free(s->wcbeg);
	free(s->wcend);
	free(s->wcoef);
	free(s->hdr);
	free(s->scratch);
	free(s);
}

size_t splitjpeg_retained(const splitjpeg *s) {
	return s->datacap + s->segcap * sizeof(uint64_t) +
	       s->mcucap * (sizeof *s->wstart + sizeof *s->wend + 4 * sizeof *s->wpred + MAXBLK * sizeof *s->wdc +
	                    sizeof *s->wcbeg + sizeof *s->wcend) +
	       s->coefcap * sizeof *s->wcoef + s->hdrcap + s->scratchcap;
}

// grow makes *p hold at least n elements of size sz.
static int grow(void **p, size_t *cap, size_t n, size_t sz) {
	if (*cap >= n) return 1;
	void *q = realloc(*p, n * sz);
	if (!q) return 0;
	*p = q;
	*cap = n;
	return 1;
}

// unstuff copies the entropy-coded data that starts at b into s->data,
// without the stuffed zero bytes and the restart markers (whose positions
// it records in s->seg), up to the first other marker. It returns 0 when
// the restart markers are out of sequence (not taken here) or memory runs
// out.
static int unstuff(splitjpeg *s, const uint8_t *b, size_t n) {
	size_t cap = s->datacap;
	if (!grow((void **)&s->data, &cap, n + PAD, 1)) return 0;
	s->datacap = cap;
	if (!grow((void **)&s->seg, &s->segcap, 64, sizeof(uint64_t))) return 0;
	s->seg[0] = 0;
	s->nseg = 1;
	uint8_t *out = s->data;
	size_t i = 0, o = 0;
	while (i < n) {
		const uint8_t *ff = memchr(b + i, 0xFF, n - i);
		size_t run = ff ? (size_t)(ff - (b + i)) : n - i;
		memcpy(out + o, b + i, run);
		o += run;
		i += run;
		if (!ff) break;
		size_t j = i + 1;
		while (j < n && b[j] == 0xFF) j++; // fill bytes
		if (j >= n) break;
		if (b[j] == 0) {
			out[o++] = 0xFF;
			i = j + 1;
			continue;
		}
		if (b[j] >= 0xD0 && b[j] <= 0xD7) { // RSTn
			if (b[j] != 0xD0 + (s->nseg - 1) % 8) return 0;
			if (!grow((void **)&s->seg, &s->segcap, s->nseg + 1, sizeof(uint64_t))) return 0;
			s->seg[s->nseg++] = o;
			i = j + 1;
			continue;
		}
		break; // a marker: the end of the scan
	}
	memset(out + o, 0, PAD);
	s->datalen = o;
	s->databits = (uint64_t)o * 8;
	return 1;
}

// limit is the bit where the data of MCU m's restart interval ends (the
// end of the data without restart markers): libjpeg stops there too.
static inline uint64_t limit(const splitjpeg *s, long long m) {
	if (!s->ri) return s->databits;
	size_t k = (size_t)(m / s->ri) + 1;
	return k < s->nseg ? s->seg[k] * 8 : s->databits;
}

// avail is how many output rows from the top are written: the calling
// thread's, and once those are all written (split by rows), the second
// thread's below them.
static int avail(splitjpeg *s) {
	int top = atomic_load_explicit(&s->rows, memory_order_acquire);
	if (!s->rowmode || top < s->rtop) return top;
	return s->rtop + atomic_load_explicit(&s->brows, memory_order_acquire);
}

// help_letterbox is the second thread's share of the letterbox (s->lb,
// when there is one), once its part of the decode is done: the rows
// written so far, until every row is claimed or the decode stops.
static void help_letterbox(splitjpeg *s) {
	if (!s->lb) return;
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed) && !imaging_lbjob_work(s->lb, avail(s)))
		sched_yield(); // the next rows are not decoded yet
}

// worker decodes MCUs from s->wbegin to the end of the data (see struct).
// After an invalid block it starts over one bit after the failed MCU's start.
static void *worker(void *arg) {
	splitjpeg *s = arg;
	uint64_t pos = s->wbegin;
	int32_t pred[4] = {0, 0, 0, 0};
	uint32_t coef[64];
	size_t nc = 0;
	long long j = 0, m0 = s->wm0;
	while (j < s->wmax) {
		if ((j & 15) == 0 && atomic_load_explicit(&s->stop, memory_order_relaxed)) break;
		if (atomic_load_explicit(&s->move, memory_order_acquire)) {
			pos = s->mvpos;
			m0 = s->mvm - j;
			pred[0] = pred[1] = pred[2] = pred[3] = 0;
			atomic_store_explicit(&s->move, 0, memory_order_release);
		}
		long long m = m0 + j;
		if (pos >= s->databits || (s->ri && m >= s->total)) break;
		if (s->ri && m % s->ri == 0) {
			pos = s->seg[m / s->ri] * 8;
			pred[0] = pred[1] = pred[2] = pred[3] = 0;
		}
		uint64_t start = pos;
		size_t c0 = nc;
		int32_t p[4] = {pred[0], pred[1], pred[2], pred[3]};
		int ok = 1; // 0: an invalid block; -1: the end of the data or of the room
		uint64_t end = limit(s, m);
		bitr r;
		bitr_at(&r, s->data, pos);
		for (int b = 0; b < s->nblk; b++) {
			int d;
			int n = block(&r, s->dc[b], s->ac[b], s->need[b], &d, coef, NULL);
			if (n < 0) {
				ok = 0;
				break;
			}
			pos = bitr_pos(&r, s->data);
			if (pos > end || nc + (size_t)n > s->coefcap) {
				ok = -1;
				break;
			}
			int ci = s->comp[b];
			p[ci] = (int32_t)((uint32_t)p[ci] + (uint32_t)d);
			s->wdc[j * s->nblk + b] = p[ci];
			for (int i = 0; i < n; i++) s->wcoef[nc + i] = coef[i] | (uint32_t)b << 8;
			nc += (size_t)n;
		}
		if (ok < 0 || (!ok && s->ri)) break;
		if (!ok) {
			nc = c0;
			pos = start + 1;
			pred[0] = pred[1] = pred[2] = pred[3] = 0;
			continue;
		}
		s->wstart[j] = start;
		s->wend[j] = pos;
		memcpy(&s->wpred[j * 4], pred, sizeof(pred));
		s->wcbeg[j] = (uint32_t)c0;
		s->wcend[j] = (uint32_t)nc;
		memcpy(pred, p, sizeof(p));
		j++;
		if ((j & 3) == 0) atomic_store_explicit(&s->done, j, memory_order_release);
	}
	atomic_store_explicit(&s->done, j, memory_order_release);
	help_letterbox(s);
	return NULL;
}

static long long now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct errmgr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
};

// on_error and on_message (for a warning) turn what libjpeg would report
// into "not taken": TurboJPEG then decodes the image and gives libjpeg's
// answer for it.
static void on_error(j_common_ptr c) { longjmp(((struct errmgr *)c->err)->jb, 1); }

static void on_message(j_common_ptr c, int level) {
	if (level < 0) on_error(c);
}

// decode_at decodes MCU m, which starts at bit *pos, into blocks with the
// DC predictors pred, and moves both past it.
static boolean decode_at(j_decompress_ptr cinfo, splitjpeg *s, long long m, uint64_t *pos, int32_t *pred,
                         JBLOCKROW *blocks) {
	uint64_t end = limit(s, m);
	bitr r;
	bitr_at(&r, s->data, *pos);
	for (int b = 0; b < s->nblk; b++) {
		int d = 0;
		JCOEF *blk = blocks[b][0];
		int n = block(&r, s->dc[b], s->ac[b], 0, &d, NULL, blk);
		*pos = bitr_pos(&r, s->data);
		if (n < 0 || *pos > end) {
			ERREXIT(cinfo, JERR_BAD_HUFF_TABLE);
		}
		int ci = s->comp[b];
		pred[ci] = (int32_t)((uint32_t)pred[ci] + (uint32_t)d);
		blk[0] = (JCOEF)pred[ci];
	}
	return TRUE;
}

// own decodes the current MCU from the data into blocks.
static boolean own(j_decompress_ptr cinfo, splitjpeg *s, JBLOCKROW *blocks) {
	return decode_at(cinfo, s, s->mcu - 1, &s->pos, s->pred, blocks);
}

// take copies the worker's MCU w into blocks when the worker has decoded
// it and it starts at the current position; it returns 0 otherwise.
static int take(splitjpeg *s, long long w, JBLOCKROW *blocks) {
	if (w >= s->seen) s->seen = atomic_load_explicit(&s->done, memory_order_acquire);
	if (w >= s->seen || s->wstart[w] != s->pos) return 0;
	for (uint32_t i = s->wcbeg[w]; i < s->wcend[w]; i++) {
		uint32_t c = s->wcoef[i];
		blocks[(c >> 8) & 15][0][c & 63] = (JCOEF)(int16_t)(c >> 16);
	}
	for (int b = 0; b < s->nblk; b++) {
		int ci = s->comp[b];
		int32_t v = (int32_t)((uint32_t)s->wdc[w * s->nblk + b] + (uint32_t)s->delta[ci]);
		blocks[b][0][0] = (JCOEF)v;
		s->pred[ci] = v;
	}
	s->pos = s->wend[w];
	s->copied++;
	return 1;
}

// relocate moves the worker, which the calling thread has caught up with,
// to the middle of the data still to decode (to a restart interval's start
// when there are restart markers), so that the two threads never decode the
// same MCUs; the calling thread then looks for it there.
static void relocate(splitjpeg *s) {
	s->synced = 0;
	if (atomic_load_explicit(&s->move, memory_order_acquire)) return; // the last move is not done yet
	uint64_t left = s->databits - s->pos;
	if (left < 64 * 1024) return; // not worth a thread's restart
	uint64_t at = s->pos + left / 2;
	long long m = 0;
	if (s->ri) {
		size_t k = (size_t)(s->mcu / s->ri) + 1;
		while (k < s->nseg && s->seg[k] * 8 < at) k++;
		if (k >= s->nseg) return;
		at = s->seg[k] * 8;
		m = (long long)k * s->ri;
	}
	s->mvpos = at;
	s->mvm = m;
	s->wbegin = at;
	s->moves++;
	atomic_store_explicit(&s->move, 1, memory_order_release);
}

// decode_mcu replaces libjpeg's Huffman decoder (see the top of the file).
static boolean decode_mcu(j_decompress_ptr cinfo, JBLOCKROW *blocks) {
	splitjpeg *s = cinfo->client_data;
	if (s->mcu >= s->total) ERREXIT(cinfo, JERR_BAD_HUFF_TABLE);
	if (s->ri && s->mcu % s->ri == 0) {
		s->pos = s->seg[s->mcu / s->ri] * 8;
		memset(s->pred, 0, sizeof(s->pred));
	}
	s->mcu++;
	if (s->synced) {
		long long w = s->w++;
		if (take(s, w, blocks)) return TRUE;
		s->lagged++;
		s->scan = w;
		relocate(s);
		return own(cinfo, s, blocks);
	}
	if (s->useworker && s->pos >= s->wbegin) {
		long long done = s->seen = atomic_load_explicit(&s->done, memory_order_acquire);
		while (s->scan < done && s->wstart[s->scan] < s->pos) s->scan++;
		if (s->scan < done && s->wstart[s->scan] == s->pos) {
			long long w = s->scan;
			for (int c = 0; c < 4; c++) s->delta[c] = (int32_t)((uint32_t)s->pred[c] - (uint32_t)s->wpred[w * 4 + c]);
			s->synced = 1;
			s->w = w + 1;
			take(s, w, blocks);
			return TRUE;
		}
	}
	return own(cinfo, s, blocks);
}

// prepare checks that cinfo is a JPEG this decoder takes and sets up the
// scan's tables; it returns 0 when it is not.
static int prepare(splitjpeg *s, j_decompress_ptr cinfo) {
	if (cinfo->comps_in_scan != cinfo->num_components || cinfo->blocks_in_MCU > MAXBLK || cinfo->blocks_in_MCU < 1)
		return 0;
	int built[8] = {0};
	for (int b = 0; b < cinfo->blocks_in_MCU; b++) {
		int ci = cinfo->MCU_membership[b];
		if (ci < 0 || ci >= 4) return 0;
		jpeg_component_info *comp = cinfo->cur_comp_info[ci];
		int d = comp->dc_tbl_no, a = comp->ac_tbl_no;
		if (d < 0 || d > 3 || a < 0 || a > 3 || !cinfo->dc_huff_tbl_ptrs[d] || !cinfo->ac_huff_tbl_ptrs[a]) return 0;
		if (!built[d] && !build(&s->tabs[d], cinfo->dc_huff_tbl_ptrs[d], 1)) return 0;
		if (!built[4 + a] && !build(&s->tabs[4 + a], cinfo->ac_huff_tbl_ptrs[a], 0)) return 0;
		built[d] = built[4 + a] = 1;
		s->comp[b] = ci;
		s->need[b] = needmask(comp->DCT_scaled_size);
		s->dc[b] = &s->tabs[d];
		s->ac[b] = &s->tabs[4 + a];
	}
	s->nblk = cinfo->blocks_in_MCU;
	s->total = (long long)cinfo->MCUs_per_row * (long long)cinfo->MCU_rows_in_scan;
	return s->total > 0;
}

// room sizes the worker's arrays for n MCUs and an estimate of the
// coefficients in its part of the data.
static int room(splitjpeg *s, size_t n, size_t coefs) {
	size_t cap = s->mcucap, c;
	int ok = 1;
	c = cap; ok &= grow((void **)&s->wstart, &c, n, sizeof(uint64_t));
	c = cap; ok &= grow((void **)&s->wend, &c, n, sizeof(uint64_t));
	c = cap; ok &= grow((void **)&s->wpred, &c, n, 4 * sizeof(int32_t));
	c = cap; ok &= grow((void **)&s->wdc, &c, n, MAXBLK * sizeof(int32_t));
	c = cap; ok &= grow((void **)&s->wcbeg, &c, n, sizeof(uint32_t));
	c = cap; ok &= grow((void **)&s->wcend, &c, n, sizeof(uint32_t));
	if (!ok) return 0;
	s->mcucap = n > cap ? n : cap;
	return grow((void **)&s->wcoef, &s->coefcap, coefs, sizeof(uint32_t));
}

// set_output sets what both threads' pipelines produce: BGR at num/8 with
// TurboJPEG's defaults (accurate inverse DCT, fancy upsampling).
static void set_output(j_decompress_ptr cinfo, int num) {
	cinfo->scale_num = (unsigned)num;
	cinfo->scale_denom = 8;
	cinfo->out_color_space = JCS_EXT_BGR;
	cinfo->dct_method = JDCT_ISLOW;
	cinfo->do_fancy_upsampling = TRUE;
}

// rowheader copies the header of buf (its first n bytes: up to the scan's
// data) into s->hdr with the image height set to h, leaving out the
// application segments libjpeg does not read (all but JFIF's APP0 and
// Adobe's APP14: an EXIF block can be 64 KiB) and comments. It returns 0
// when the markers are not as expected or memory runs out.
static int rowheader(splitjpeg *s, const uint8_t *buf, size_t n, int h) {
	if (n < 4 || buf[0] != 0xFF || buf[1] != 0xD8 || h < 1 || h > 65535) return 0;
	if (!grow((void **)&s->hdr, &s->hdrcap, n, 1)) return 0;
	uint8_t *o = s->hdr;
	size_t i = 2, k = 2, sof = 0;
	o[0] = 0xFF, o[1] = 0xD8;
	for (;;) {
		while (i < n && buf[i] == 0xFF && i + 1 < n && buf[i + 1] == 0xFF) i++; // fill bytes
		if (i + 4 > n || buf[i] != 0xFF) return 0;
		uint8_t m = buf[i + 1];
		size_t len = (size_t)buf[i + 2] << 8 | buf[i + 3];
		if (len < 2 || i + 2 + len > n) return 0;
		size_t end = i + 2 + len;
		if (m == 0xDA) { // the scan: the header ends with it
			if (end != n || !sof) return 0;
			memcpy(o + k, buf + i, len + 2);
			k += len + 2;
			break;
		}
		if (!((m >= 0xE1 && m <= 0xED) || m == 0xEF || m == 0xFE)) {
			if (m == 0xC0 || m == 0xC1) {
				if (len < 8 || sof) return 0;
				sof = k;
			}
			memcpy(o + k, buf + i, len + 2);
			k += len + 2;
		}
		i = end;
	}
	o[sof + 5] = (uint8_t)(h >> 8);
	o[sof + 6] = (uint8_t)h;
	s->hdrlen = k;
	return 1;
}

// rowplan decides whether cinfo (started, on the calling thread) is split by
// rows at rowsplit (0..1, where in the data the second thread's part
// begins) and where: a row whose MCU row above starts a restart interval,
// with two MCU rows at least on either side. It sets s->rowmode.
static void rowplan(splitjpeg *s, j_decompress_ptr cinfo, const uint8_t *buf, size_t hdrlen, double rowsplit) {
	s->rowmode = 0;
	if (!s->ri || rowsplit <= 0 || rowsplit >= 1) return;
	if (cinfo->comps_in_scan == 1 &&
	    (cinfo->cur_comp_info[0]->h_samp_factor != 1 || cinfo->cur_comp_info[0]->v_samp_factor != 1))
		return; // a non-interleaved scan whose MCU row is not the image's row of blocks
	long long mpr = (long long)cinfo->MCUs_per_row, mrows = (long long)cinfo->MCU_rows_in_scan;
	int mcuh = cinfo->max_v_samp_factor * DCTSIZE; // image rows per MCU row
	int rpm = cinfo->max_v_samp_factor * cinfo->min_DCT_scaled_size; // output rows per MCU row
	if (mrows < 4 || rpm < 1) return;
	uint64_t want = (uint64_t)(rowsplit * (double)s->datalen);
	long long best = -1;
	uint64_t bestd = UINT64_MAX;
	for (long long r = 2; r <= mrows - 2; r++) {
		long long m = (r - 1) * mpr;
		if (m % s->ri) continue;
		uint64_t at = s->seg[m / s->ri], d = at > want ? at - want : want - at;
		if (d < bestd) bestd = d, best = r;
	}
	if (best < 0 || (long long)rpm * best >= (long long)cinfo->output_height) return;
	int h = (int)cinfo->image_height - (int)(best - 1) * mcuh;
	if (!rowheader(s, buf, hdrlen, h)) return;
	size_t row = (size_t)cinfo->output_width * 3;
	if (!grow((void **)&s->scratch, &s->scratchcap, row + 64, 1)) return;
	s->rpm = rpm;
	s->rtop = rpm * (int)best;
	s->rm0 = (best - 1) * mpr;
	s->rowmode = 1;
}

// part is where the second thread is in its part of a split by rows.
typedef struct {
	splitjpeg *s;
	long long mcu;
	uint64_t pos;
	int32_t pred[4];
} part;

// decode_part is decode_mcu for the second thread's part.
static boolean decode_part(j_decompress_ptr cinfo, JBLOCKROW *blocks) {
	part *p = cinfo->client_data;
	splitjpeg *s = p->s;
	if (p->mcu >= s->total) ERREXIT(cinfo, JERR_BAD_HUFF_TABLE);
	if (p->mcu % s->ri == 0) {
		p->pos = s->seg[p->mcu / s->ri] * 8;
		memset(p->pred, 0, sizeof(p->pred));
	}
	p->mcu++;
	return decode_at(cinfo, s, p->mcu - 1, &p->pos, p->pred, blocks);
}

// rowworker decodes the bottom part of a split by rows (see the top of the
// file), then letterboxes rows with the calling thread.
static void *rowworker(void *arg) {
	splitjpeg *s = arg;
	struct jpeg_decompress_struct cinfo;
	struct errmgr jerr;
	part p = {s, s->rm0, 0, {0, 0, 0, 0}};
	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = on_error;
	jerr.pub.emit_message = on_message;
	if (setjmp(jerr.jb)) {
		atomic_store_explicit(&s->wfail, 1, memory_order_release);
		jpeg_destroy_decompress(&cinfo);
		return NULL;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, s->hdr, (unsigned long)s->hdrlen);
	jpeg_read_header(&cinfo, TRUE);
	set_output(&cinfo, s->num);
	jpeg_start_decompress(&cinfo);
	const int skip = s->rpm, first = s->rtop - skip; // the rows above the part, and its first output row
	if ((int)cinfo.output_width != s->ow || (int)cinfo.output_height != s->oh - first ||
	    cinfo.output_components != 3 || cinfo.blocks_in_MCU != s->nblk ||
	    (long long)cinfo.MCUs_per_row * (long long)cinfo.MCU_rows_in_scan != s->total - s->rm0)
		ERREXIT(&cinfo, JERR_BAD_HUFF_TABLE); // not the same layout: leave the image to TurboJPEG
	cinfo.client_data = &p;
	cinfo.entropy->decode_mcu = decode_part;
	JSAMPROW rows[16];
	while (cinfo.output_scanline < cinfo.output_height) {
		if (atomic_load_explicit(&s->stop, memory_order_relaxed)) break;
		int n = 0;
		for (; n < 16 && cinfo.output_scanline + (unsigned)n < cinfo.output_height; n++) {
			int y = (int)cinfo.output_scanline + n;
			rows[n] = y < skip ? s->scratch : s->dst + (size_t)(first + y) * (size_t)s->pitch;
		}
		jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
		int done = (int)cinfo.output_scanline - skip;
		if (done > 0) atomic_store_explicit(&s->brows, done, memory_order_release);
	}
	atomic_store_explicit(&s->wdone, now_ns(), memory_order_release);
	jpeg_destroy_decompress(&cinfo);
	help_letterbox(s);
	return NULL;
}

int splitjpeg_decode(splitjpeg *s, const unsigned char *buf, size_t len, int num, unsigned char *dst, int w,
                     int pitch, int h, double split, double rowsplit, int wait, imaging_lbjob *lb,
                     splitjpeg_stats *stats) {
	struct jpeg_decompress_struct cinfo;
	struct errmgr jerr;
	volatile int started = 0;
	volatile int rc = 0;

	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = on_error;
	jerr.pub.emit_message = on_message;
	if (setjmp(jerr.jb)) {
		rc = 1;
		goto out;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_read_header(&cinfo, TRUE);
	if (cinfo.progressive_mode || cinfo.arith_code || cinfo.data_precision != 8 ||
	    (cinfo.num_components != 1 && cinfo.num_components != 3)) {
		rc = 1;
		goto out;
	}
	set_output(&cinfo, num);
	const uint8_t *ent = cinfo.src->next_input_byte;
	size_t entlen = cinfo.src->bytes_in_buffer;
	if (!unstuff(s, ent, entlen)) {
		rc = 1;
		goto out;
	}
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != w || (int)cinfo.output_height != h || cinfo.output_components != 3 ||
	    !prepare(s, &cinfo)) {
		rc = 1;
		goto out;
	}
	s->ri = (long long)cinfo.restart_interval;
	if (s->ri && s->nseg != (size_t)((s->total + s->ri - 1) / s->ri)) {
		rc = 1; // restart markers missing or extra
		goto out;
	}
	if (!s->ri && s->nseg != 1) {
		rc = 1;
		goto out;
	}
	s->pos = 0;
	memset(s->pred, 0, sizeof(s->pred));
	memset(s->delta, 0, sizeof(s->delta));
	s->mcu = s->w = s->scan = s->copied = s->lagged = s->seen = s->moves = 0;
	atomic_store(&s->move, 0);
	s->synced = 0;
	s->wbegin = (uint64_t)(split * (double)s->datalen) * 8;
	s->wm0 = 0;
	if (s->ri) { // start at the interval nearest the split: no guessing
		size_t k = (size_t)(split * (double)s->nseg + 0.5);
		s->wbegin = k > 0 && k < s->nseg ? s->seg[k] * 8 : 0;
		s->wm0 = (long long)k * s->ri;
	}
	atomic_store(&s->done, 0);
	atomic_store(&s->stop, 0);
	atomic_store(&s->rows, 0);
	s->lb = wait ? NULL : lb; // (a worker run to its end first would wait for rows forever)
	s->useworker = split > 0 && split < 1 && s->wbegin > 0 && s->wbegin < s->databits;
	s->num = num, s->ow = w, s->oh = h, s->pitch = pitch, s->dst = dst;
	rowplan(s, &cinfo, buf, (size_t)(ent - buf), rowsplit);
	atomic_store(&s->brows, 0);
	atomic_store(&s->wfail, 0);
	atomic_store(&s->wdone, 0);
	if (s->rowmode) {
		s->useworker = 0;
		if (!(s->th = helper_start(rowworker, s))) {
			s->rowmode = 0;
		} else {
			started = 1;
			if (wait) {
				helper_join(s->th);
				started = 0;
			}
		}
	}
	s->wmax = s->total + s->total / 2 + 64; // room for MCUs decoded before a sync or a move
	if (s->useworker) {
		// Every MCU after the start and some more (see wmax); on average a
		// coefficient takes more than 4 bits, and the worker only ever
		// decodes data after its first start.
		size_t bits = (size_t)(s->databits - s->wbegin);
		if (!room(s, (size_t)s->wmax, bits / 4 + 64 * MAXBLK) ||
		    !(s->th = helper_start(worker, s)))
			s->useworker = 0;
		else
			started = 1;
		if (started && wait) { // tests: the worker decodes its whole part first
			helper_join(s->th);
			started = 0;
		}
	}
	cinfo.client_data = s;
	cinfo.entropy->decode_mcu = decode_mcu;
	JSAMPROW rows[16];
	const unsigned last = s->rowmode ? (unsigned)s->rtop : cinfo.output_height; // (the rows after: the worker's)
	while (cinfo.output_scanline < last) {
		int n = 0;
		for (; n < 16 && cinfo.output_scanline + (unsigned)n < last; n++)
			rows[n] = dst + (size_t)(cinfo.output_scanline + (unsigned)n) * (size_t)pitch;
		jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
		if (lb) atomic_store_explicit(&s->rows, (int)cinfo.output_scanline, memory_order_release);
	}
	if (s->rowmode && !lb) {
		if (started) helper_join(s->th);
		started = 0;
	}
	if (s->rowmode && atomic_load_explicit(&s->wfail, memory_order_acquire)) {
		rc = 1;
		goto out;
	}
	if (lb) { // the rows left, with the worker, and those it is still writing
		long long t0 = now_ns();
		while (!imaging_lbjob_work(lb, avail(s))) {
			if (atomic_load_explicit(&s->wfail, memory_order_acquire)) {
				rc = 1;
				goto out;
			}
			sched_yield(); // (split by rows: the second thread's rows are not all decoded yet)
		}
		while (!imaging_lbjob_done(lb))
			sched_yield();
		if (s->rowmode) { // the last row decoded may be the second thread's
			long long w = atomic_load_explicit(&s->wdone, memory_order_acquire);
			if (w > t0) t0 = w;
		}
		if (stats) stats->tail_ns = now_ns() - t0;
	}
	if (s->rowmode) s->copied = s->total - s->rm0 - (long long)cinfo.MCUs_per_row;
	if (stats) {
		stats->rows = s->rowmode;
		stats->worker = s->useworker || s->rowmode;
		stats->mcus = s->total;
		stats->copied = s->copied;
		stats->lagged = s->lagged;
		stats->moves = s->moves;
	}
out:
	if (started) {
		atomic_store(&s->stop, 1);
		helper_join(s->th);
	}
	jpeg_destroy_decompress(&cinfo);
	return rc;
}

void splitjpeg_call_run(void *arg) {
	splitjpeg_call *c = arg;
	c->rc = splitjpeg_decode(c->s, c->buf, c->len, c->num, c->dst, c->w, c->pitch, c->h, c->split, c->rowsplit, c->wait,
	                         c->lb, &c->stats);
}
