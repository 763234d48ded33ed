// OpenCV helpers for the imaging package: decoding without copying the
// encoded bytes (gocv.IMDecode copies them into a std::vector first) and the
// letterbox written straight into a model's float input planes.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <new>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
	std::vector<int> xw01; // xw0 | xw1 << 16, for the vector path
	int nvec;              // destination pixels the vector path makes (see hresize_avx2)
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
		j->xw01.resize(nw);
		j->nvec = 0;
		for (int x = 0; x < nw; x++) {
			j->xw01[x] = int((unsigned short)j->xw0[x] | unsigned(j->xw1[x]) << 16);
			// The vector path reads 4 bytes at each pixel: not past the row.
			if (j->nvec == x && j->xo1[x] + 4 <= sw * 3) j->nvec = x + 1;
		}
		j->nvec &= ~7;
		linear_tab(sh, nh, j->yi0.data(), j->yi1.data(), j->yw0.data(), j->yw1.data());
	} catch (...) {
		delete j;
		return nullptr;
	}
	return j;
}

void imaging_lbjob_free(imaging_lbjob *j) { delete j; }

int imaging_lbjob_done(const imaging_lbjob *j) { return j->left.load(std::memory_order_acquire) == 0; }

#if defined(__x86_64__)
// hresize_avx2 is hresize's loop for one row and its first j->nvec
// destination pixels, 8 at a time: the two source pixels of each are
// gathered as 32-bit words (B, G, R and a byte of the next pixel), and each
// channel's weighted sum is one multiply-add of 16-bit pairs. The same
// integers as the scalar loop, so the same values.
__attribute__((target("avx2"))) static void hresize_avx2(const imaging_lbjob *j, const unsigned char *s, short *o) {
	const int nw = j->nw, n = j->nvec;
	const int *i0 = j->xo0.data(), *i1 = j->xo1.data(), *w = j->xw01.data();
	const __m256i lo = _mm256_set1_epi32(0xFF), hi = _mm256_set1_epi32(0xFF0000);
	short *o0 = o, *o1 = o + nw, *o2 = o + 2 * nw;
	for (int x = 0; x < n; x += 8) {
		const __m256i a = _mm256_i32gather_epi32(reinterpret_cast<const int *>(s),
		                                         _mm256_loadu_si256(reinterpret_cast<const __m256i *>(i0 + x)), 1);
		const __m256i b = _mm256_i32gather_epi32(reinterpret_cast<const int *>(s),
		                                         _mm256_loadu_si256(reinterpret_cast<const __m256i *>(i1 + x)), 1);
		const __m256i wt = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + x));
		// (first pixel's channel) | (second pixel's channel) << 16, per channel
		const __m256i p0 = _mm256_or_si256(_mm256_and_si256(a, lo), _mm256_and_si256(_mm256_slli_epi32(b, 16), hi));
		const __m256i p1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(a, 8), lo),
		                                   _mm256_and_si256(_mm256_slli_epi32(b, 8), hi));
		const __m256i p2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(a, 16), lo), _mm256_and_si256(b, hi));
		const __m256i v0 = _mm256_srai_epi32(_mm256_madd_epi16(p0, wt), 4);
		const __m256i v1 = _mm256_srai_epi32(_mm256_madd_epi16(p1, wt), 4);
		const __m256i v2 = _mm256_srai_epi32(_mm256_madd_epi16(p2, wt), 4);
		_mm_storeu_si128(reinterpret_cast<__m128i *>(o0 + x),
		                 _mm_packs_epi32(_mm256_castsi256_si128(v0), _mm256_extracti128_si256(v0, 1)));
		_mm_storeu_si128(reinterpret_cast<__m128i *>(o1 + x),
		                 _mm_packs_epi32(_mm256_castsi256_si128(v1), _mm256_extracti128_si256(v1, 1)));
		_mm_storeu_si128(reinterpret_cast<__m128i *>(o2 + x),
		                 _mm_packs_epi32(_mm256_castsi256_si128(v2), _mm256_extracti128_si256(v2, 1)));
	}
}

static const bool have_avx2 = [] {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") != 0;
}();
#endif

// hresize_tail is hresize's loop for one row from destination pixel x0.
static void hresize_tail(const imaging_lbjob *j, const unsigned char *s, short *o, int x0) {
	const int nw = j->nw;
	const int *i0 = j->xo0.data(), *i1 = j->xo1.data();
	const short *w0 = j->xw0.data(), *w1 = j->xw1.data();
	short *o0 = o, *o1 = o + nw, *o2 = o + 2 * nw;
	for (int x = x0; x < nw; x++) {
		const int a = i0[x], b = i1[x], p = w0[x], q = w1[x];
		o0[x] = short((s[a] * p + s[b] * q) >> 4);
		o1[x] = short((s[a + 1] * p + s[b + 1] * q) >> 4);
		o2[x] = short((s[a + 2] * p + s[b + 2] * q) >> 4);
	}
}

// hresize resizes source rows sy[0..rows) horizontally into out[0..rows),
// each one plane of nw values per channel (B, G, R): the weighted sums >> 4,
// the 16-bit values cv::resize's vector path keeps. Two rows go in one pass
// (the positions and weights are loaded once).
static void hresize(const imaging_lbjob *j, const int *sy, short *const *out, int rows) {
#if defined(__x86_64__)
	if (have_avx2) {
		for (int r = 0; r < rows; r++) {
			const unsigned char *s = j->src + size_t(sy[r]) * j->step;
			hresize_avx2(j, s, out[r]);
			hresize_tail(j, s, out[r], j->nvec);
		}
		return;
	}
#endif
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
	hresize_tail(j, s, out[0], 0);
}

// vplane blends two horizontally resized rows of one channel as cv::resize's
// vector path does (VResizeLinearVec_32s8u: 16-bit high multiplies, then
// round to a byte) and writes value / 255 as Letterbox's lookup table has
// it (float division, the same bits).
#if defined(__x86_64__)
// vplane_avx2 is vplane's loop, 16 values at a time (16-bit high
// multiplies, as in cv::resize), for the first n & ~15; it returns how many
// it wrote.
__attribute__((target("avx2"))) static int vplane_avx2(const short *h0, const short *h1, int n, int b0, int b1,
                                                       float *d) {
	const __m256i m0 = _mm256_set1_epi16(short(b0)), m1 = _mm256_set1_epi16(short(b1)), two = _mm256_set1_epi16(2);
	const __m256 k = _mm256_set1_ps(255.f);
	int x = 0;
	for (; x + 16 <= n; x += 16) {
		const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(h0 + x));
		const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(h1 + x));
		__m256i t = _mm256_add_epi16(_mm256_mulhi_epi16(a, m0), _mm256_mulhi_epi16(b, m1));
		t = _mm256_srai_epi16(_mm256_add_epi16(t, two), 2);
		t = _mm256_min_epi16(_mm256_max_epi16(t, _mm256_setzero_si256()), _mm256_set1_epi16(255));
		const __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(t));
		const __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(t, 1));
		_mm256_storeu_ps(d + x, _mm256_div_ps(_mm256_cvtepi32_ps(lo), k));
		_mm256_storeu_ps(d + x + 8, _mm256_div_ps(_mm256_cvtepi32_ps(hi), k));
	}
	return x;
}
#endif

static void vplane(const short *h0, const short *h1, int n, int b0, int b1, float *d) {
	int x0 = 0;
#if defined(__x86_64__)
	if (have_avx2) x0 = vplane_avx2(h0, h1, n, b0, b1, d);
#endif
	for (int x = x0; x < n; x++) {
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
