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

// imaging_lbjob is a letterbox like imaging_letterbox's for a downscale
// (nw <= sw, nh <= sh, not exactly 2x both ways: cv::resize switches to
// INTER_AREA there), with cv::resize's INTER_LINEAR fixed-point arithmetic,
// that threads can share a few destination rows at a time while the source
// is still being written, top to bottom.
typedef struct imaging_lbjob imaging_lbjob;

// imaging_lbjob_new prepares the letterbox of the sw x sh 8-bit BGR pixels
// at src (rows step bytes apart) into dst, or returns NULL for sizes that do
// not fit (or no memory).
imaging_lbjob *imaging_lbjob_new(const unsigned char *src, size_t step, int sw, int sh, float *dst, int W, int H,
                                 int nw, int nh, int px, int py, int bgr, float pad);
void imaging_lbjob_free(imaging_lbjob *j);

// imaging_lbjob_work writes destination rows, claiming them in turn with
// any other thread working on j, as long as their source rows are below
// avail (the rows of src already written). It returns 1 when every row is
// claimed (not necessarily written: see imaging_lbjob_done), 0 when the
// next rows need source rows not yet available.
int imaging_lbjob_work(imaging_lbjob *j, int avail);

// imaging_lbjob_done reports whether every row has been written.
int imaging_lbjob_done(const imaging_lbjob *j);

#ifdef __cplusplus
}
#endif
#endif
