// OpenCV helpers for the imaging package: decoding without copying the
// encoded bytes (gocv.IMDecode copies them into a std::vector first) and the
// letterbox written straight into a model's float input planes.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <new>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cv.h"

static void set_err(char *err, int errlen, const char *msg) {
	if (err == nullptr || errlen <= 0) return;
	std::strncpy(err, msg, errlen - 1);
	err[errlen - 1] = 0;
}

// guarded runs f, turning an exception into -1 and its message in err.
template <class F> static int guarded(char *err, int errlen, F f) {
	try {
		f();
		return 0;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
	} catch (...) {
		set_err(err, errlen, "unknown OpenCV error");
	}
	return -1;
}

int imaging_imdecode(const unsigned char *buf, int len, int flags, void *dst, char *err, int errlen) {
	return guarded(err, errlen, [&] {
		cv::Mat raw(1, len, CV_8UC1, const_cast<unsigned char *>(buf));
		cv::imdecode(raw, flags, static_cast<cv::Mat *>(dst));
	});
}

int imaging_letterbox(void *src, float *dst, int W, int H, int nw, int nh, int px, int py, int bgr,
                      const float *lut, float pad, char *err, int errlen) {
	return guarded(err, errlen, [&] {
		const cv::Mat &s = *static_cast<cv::Mat *>(src);
		cv::Mat r = s;
		if (s.cols != nw || s.rows != nh) {
			cv::resize(s, r, cv::Size(nw, nh), 0, 0, cv::INTER_LINEAR);
		}
		const size_t n = size_t(W) * size_t(H);
		float *p0 = dst, *p1 = dst + n, *p2 = dst + 2 * n; // R, G, B (or B, G, R)
		const int c0 = bgr ? 0 : 2, c2 = bgr ? 2 : 0;
		float *planes[3] = {p0, p1, p2};
		for (float *p : planes) {
			std::fill(p, p + size_t(py) * W, pad);
			std::fill(p + size_t(py + nh) * W, p + n, pad);
		}
		for (int y = 0; y < nh; y++) {
			const size_t row = size_t(py + y) * W;
			for (float *p : planes) {
				std::fill(p + row, p + row + px, pad);
				std::fill(p + row + px + nw, p + row + W, pad);
			}
			const unsigned char *sp = r.ptr<unsigned char>(y);
			float *d0 = p0 + row + px, *d1 = p1 + row + px, *d2 = p2 + row + px;
			for (int x = 0; x < nw; x++, sp += 3) {
				d0[x] = lut[sp[c0]];
				d1[x] = lut[sp[1]];
				d2[x] = lut[sp[c2]];
			}
		}
	});
}

// The letterbox job: cv::resize's INTER_LINEAR and the float planes of
// imaging_letterbox, computed here a few destination rows at a time so that
// two threads can share them while the image is still being decoded.

// linear_tab computes cv::resize's INTER_LINEAR source positions and
// fixed-point weights (11 bits) for n destination positions over a source
// of len, as cv::resize does from the two sizes.
static void linear_tab(int len, int n, int *i0, int *i1, short *w0, short *w1) {
	const double scale = 1. / (double(n) / len);
	for (int d = 0; d < n; d++) {
		float f = float((d + 0.5) * scale - 0.5);
		int s = cvFloor(f);
		f -= s;
		if (s < 0) f = 0, s = 0;
		if (s >= len - 1) f = 0, s = len - 1;
		i0[d] = s;
		i1[d] = std::min(s + 1, len - 1);
		w0[d] = cv::saturate_cast<short>((1.f - f) * 2048);
		w1[d] = cv::saturate_cast<short>(f * 2048);
	}
}

static const int lbjob_chunk = 8; // destination rows a thread claims at once

struct imaging_lbjob {
	const unsigned char *src;
	size_t step;
	float *dst;
	int W, H, nw, nh, px, py, c0, c2;
	float pad;
	int chunks;
	std::vector<int> xo0, xo1; // byte offsets of the two source pixels in a row
	std::vector<int> yi0, yi1; // the two source rows
	std::vector<short> xw0, xw1, yw0, yw1;
	std::atomic<int> next{0}; // the next chunk to claim
	std::atomic<int> left{0}; // chunks claimed but not finished, and not claimed
};

imaging_lbjob *imaging_lbjob_new(const unsigned char *src, size_t step, int sw, int sh, float *dst, int W, int H,
                                 int nw, int nh, int px, int py, int bgr, float pad) {
	if (sw < 1 || sh < 1 || nw < 1 || nh < 1 || nw > sw || nh > sh || px < 0 || py < 0 || px + nw > W ||
	    py + nh > H || step < size_t(sw) * 3)
		return nullptr;
	imaging_lbjob *j = new (std::nothrow) imaging_lbjob;
	if (!j) return nullptr;
	try {
		j->src = src, j->step = step, j->dst = dst, j->W = W, j->H = H, j->nw = nw, j->nh = nh;
		j->px = px, j->py = py, j->c0 = bgr ? 0 : 2, j->c2 = bgr ? 2 : 0, j->pad = pad;
		j->chunks = (nh + lbjob_chunk - 1) / lbjob_chunk;
		j->left = j->chunks;
		j->xo0.resize(nw), j->xo1.resize(nw), j->xw0.resize(nw), j->xw1.resize(nw);
		j->yi0.resize(nh), j->yi1.resize(nh), j->yw0.resize(nh), j->yw1.resize(nh);
		linear_tab(sw, nw, j->xo0.data(), j->xo1.data(), j->xw0.data(), j->xw1.data());
		for (int x = 0; x < nw; x++) j->xo0[x] *= 3, j->xo1[x] *= 3; // pixels to bytes (BGR)
		linear_tab(sh, nh, j->yi0.data(), j->yi1.data(), j->yw0.data(), j->yw1.data());
	} catch (...) {
		delete j;
		return nullptr;
	}
	return j;
}

void imaging_lbjob_free(imaging_lbjob *j) { delete j; }

int imaging_lbjob_done(const imaging_lbjob *j) { return j->left.load(std::memory_order_acquire) == 0; }

// hresize resizes source rows sy[0..rows) horizontally into out[0..rows),
// each one plane of nw values per channel (B, G, R): the weighted sums >> 4,
// the 16-bit values cv::resize's vector path keeps. Two rows go in one pass
// (the positions and weights are loaded once).
static void hresize(const imaging_lbjob *j, const int *sy, short *const *out, int rows) {
	const int nw = j->nw;
	const int *i0 = j->xo0.data(), *i1 = j->xo1.data();
	const short *w0 = j->xw0.data(), *w1 = j->xw1.data();
	const unsigned char *s = j->src + size_t(sy[0]) * j->step;
	short *o0 = out[0], *o1 = out[0] + nw, *o2 = out[0] + 2 * nw;
	if (rows == 2) {
		const unsigned char *t = j->src + size_t(sy[1]) * j->step;
		short *q0 = out[1], *q1 = out[1] + nw, *q2 = out[1] + 2 * nw;
		for (int x = 0; x < nw; x++) {
			const int a = i0[x], b = i1[x], p = w0[x], q = w1[x];
			o0[x] = short((s[a] * p + s[b] * q) >> 4);
			o1[x] = short((s[a + 1] * p + s[b + 1] * q) >> 4);
			o2[x] = short((s[a + 2] * p + s[b + 2] * q) >> 4);
			q0[x] = short((t[a] * p + t[b] * q) >> 4);
			q1[x] = short((t[a + 1] * p + t[b + 1] * q) >> 4);
			q2[x] = short((t[a + 2] * p + t[b + 2] * q) >> 4);
		}
		return;
	}
	for (int x = 0; x < nw; x++) {
		const int a = i0[x], b = i1[x], p = w0[x], q = w1[x];
		o0[x] = short((s[a] * p + s[b] * q) >> 4);
		o1[x] = short((s[a + 1] * p + s[b + 1] * q) >> 4);
		o2[x] = short((s[a + 2] * p + s[b + 2] * q) >> 4);
	}
}

// vplane blends two horizontally resized rows of one channel as cv::resize's
// vector path does (VResizeLinearVec_32s8u: 16-bit high multiplies, then
// round to a byte) and writes value / 255 as Letterbox's lookup table has
// it (float division, the same bits).
static void vplane(const short *h0, const short *h1, int n, int b0, int b1, float *d) {
	for (int x = 0; x < n; x++) {
		int t = ((h0[x] * b0) >> 16) + ((h1[x] * b1) >> 16);
		t = (t + 2) >> 2;
		t = t < 0 ? 0 : t > 255 ? 255 : t;
		d[x] = float(t) / 255.f;
	}
}

// lbjob_rows writes the letterbox rows of chunk k. h holds the source rows
// hrow resized horizontally (the caller keeps both from chunk to chunk).
static void lbjob_rows(imaging_lbjob *j, int k, short **h, int *hrow) {
	const int W = j->W, nw = j->nw, px = j->px;
	const size_t n = size_t(W) * size_t(j->H);
	float *planes[3] = {j->dst, j->dst + n, j->dst + 2 * n};
	const int ch[3] = {j->c0, 1, j->c2}; // the source channel of each plane
	const int y0 = k * lbjob_chunk, y1 = std::min(y0 + lbjob_chunk, j->nh);
	if (k == 0)
		for (float *p : planes) std::fill(p, p + size_t(j->py) * W, j->pad);
	if (y1 == j->nh)
		for (float *p : planes) std::fill(p + size_t(j->py + j->nh) * W, p + n, j->pad);
	for (int y = y0; y < y1; y++) {
		const size_t r = size_t(j->py + y) * W;
		// The two source rows, resized horizontally once each.
		const int s[2] = {j->yi0[y], j->yi1[y]};
		if (hrow[0] != s[0] && hrow[1] == s[0]) { // moving down: the second row is the new first
			std::swap(h[0], h[1]);
			std::swap(hrow[0], hrow[1]);
		}
		if (hrow[0] != s[0] && hrow[1] != s[1]) {
			hresize(j, s, h, 2);
		} else if (hrow[0] != s[0]) {
			hresize(j, s, h, 1);
		} else if (hrow[1] != s[1]) {
			hresize(j, s + 1, h + 1, 1);
		}
		hrow[0] = s[0], hrow[1] = s[1];
		for (int c = 0; c < 3; c++) {
			float *p = planes[c];
			std::fill(p + r, p + r + px, j->pad);
			std::fill(p + r + px + nw, p + r + W, j->pad);
			vplane(h[0] + ch[c] * nw, h[1] + ch[c] * nw, nw, j->yw0[y], j->yw1[y], p + r + px);
		}
	}
}

int imaging_lbjob_work(imaging_lbjob *j, int avail) {
	std::vector<short> hb;
	short *h[2] = {nullptr, nullptr};
	int hrow[2] = {-1, -1};
	for (;;) {
		int k = j->next.load(std::memory_order_relaxed);
		if (k >= j->chunks) return 1;
		const int last = std::min((k + 1) * lbjob_chunk, j->nh) - 1;
		if (j->yi1[last] >= avail) return 0; // its source rows are not decoded yet
		if (!j->next.compare_exchange_weak(k, k + 1, std::memory_order_acquire, std::memory_order_relaxed)) continue;
		if (hb.empty()) {
			hb.resize(6 * size_t(j->nw));
			h[0] = hb.data(), h[1] = hb.data() + 3 * size_t(j->nw);
		}
		lbjob_rows(j, k, h, hrow);
		j->left.fetch_sub(1, std::memory_order_release);
	}
}
