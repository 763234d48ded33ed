// Two-thread decoding of one baseline JPEG (see splitjpeg.c).
#ifndef IMAGING_SPLITJPEG_H
#define IMAGING_SPLITJPEG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct splitjpeg splitjpeg;

// splitjpeg_stats describes one decode, for tests and benchmarks.
typedef struct {
	int worker;       // 1 when a second thread decoded part of the data
	long long mcus;   // MCUs in the image
	long long copied; // MCUs taken from the second thread's decode
	long long lagged; // MCUs the calling thread decoded after the sync, the second thread being behind
	long long moves;  // times the second thread was moved ahead of the calling one
	long long tail_ns; // with a letterbox: from the last row decoded to the letterbox done
	int rows;         // 1 when the image was split by rows (restart markers), copied then the second part's MCUs
} splitjpeg_stats;

typedef struct imaging_lbjob imaging_lbjob; // cv.h

splitjpeg *splitjpeg_new(void);

// splitjpeg_helpers is how many second threads this process has made: they
// are kept and reused, one for each two-thread decode running at once.
int splitjpeg_helpers(void);
void splitjpeg_free(splitjpeg *s);

// splitjpeg_retained is the memory s keeps between decodes, in bytes: its
// copy of the last images' entropy-coded data and the second thread's
// arrays, sized for the largest image it decoded.
size_t splitjpeg_retained(const splitjpeg *s);

// splitjpeg_decode decodes buf at the DCT scale num/8 into BGR pixels of w x
// h (the scaled size) with row pitch, exactly as TurboJPEG's tjDecompress2
// with accurate IDCT and fancy upsampling does. split (0..1) is where in the
// entropy-coded data the second thread starts. It returns 0 on success, 1
// for an image it does not take (progressive, arithmetic coding, restart
// markers out of sequence, 12-bit, CMYK, several scans, damaged data, any
// libjpeg error or warning: decode it the usual way). A JPEG whose restart
// intervals start rows of MCUs is split by rows instead when rowsplit is in
// (0, 1): each thread decodes a part of the image, the second one from about
// rowsplit of the data. With wait (tests),
// the second thread finishes its part before the calling thread starts.
// With lb (a letterbox of dst), the second thread, once its part is
// decoded, letterboxes the rows the calling thread has written, and the
// calling thread does what is left when it has written them all: on
// success the letterbox is complete.
int splitjpeg_decode(splitjpeg *s, const unsigned char *buf, size_t len, int num, unsigned char *dst, int w,
                     int pitch, int h, double split, double rowsplit, int wait, imaging_lbjob *lb,
                     splitjpeg_stats *stats);

// splitjpeg_call is a splitjpeg_decode call's arguments and results, for
// splitjpeg_call_run on a thread of plugins/internal/cthread.
typedef struct {
	splitjpeg *s;
	const unsigned char *buf;
	size_t len;
	int num;
	unsigned char *dst;
	int w, pitch, h;
	double split, rowsplit;
	int wait;
	imaging_lbjob *lb;
	splitjpeg_stats stats;
	int rc;
} splitjpeg_call;

// splitjpeg_call_run runs the splitjpeg_decode call arg (a splitjpeg_call).
void splitjpeg_call_run(void *arg);

#ifdef __cplusplus
}
#endif

#endif
