// OpenCV helpers for the imaging package: decoding without copying the
// encoded bytes (gocv.IMDecode copies them into a std::vector first) and the
// letterbox written straight into a model's float input planes.
#include <algorithm>
#include <cstring>
#include <exception>

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
