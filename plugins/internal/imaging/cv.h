// C declarations of the OpenCV helpers in cv.cpp (the Go side sees cv::Mat
// pointers as void*).
#ifndef AZAION_IMAGING_CV_H
#define AZAION_IMAGING_CV_H
#ifdef __cplusplus
extern "C" {
#endif

// imaging_imdecode decodes len bytes at buf with cv::imdecode(flags) into the
// Mat dst, reading buf in place (no copy). It returns 0, or -1 when OpenCV
// threw (the message, if any, is written to err, NUL-terminated).
int imaging_imdecode(const unsigned char *buf, int len, int flags, void *dst, char *err, int errlen);

// imaging_letterbox resizes the 8-bit BGR Mat src to nw x nh (INTER_LINEAR;
// no resize when it already is that size), writes it at (px, py) into the
// three W x H float planes at dst through lut (byte -> value), in R,G,B
// plane order (B,G,R when bgr), and fills the rest of the planes with pad.
// It returns 0, or -1 when OpenCV threw.
int imaging_letterbox(void *src, float *dst, int W, int H, int nw, int nh, int px, int py, int bgr,
                      const float *lut, float pad, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
