package imaging

/*
#cgo CXXFLAGS: --std=c++11 -O3
#cgo pkg-config: opencv4
#include <stdlib.h>
#include "cv.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/yolo"
)

// PadValue is the letterbox padding (114) in network units.
const PadValue = float32(114) / 255

// unit maps a byte to its value / 255, as Ultralytics computes it in float32.
var unit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// Letterbox resizes img into the w x h letterbox of its original size
// (INTER_LINEAR from whatever scale it was decoded at, centred, pad 114)
// and writes it into dst as three float32 planes of w*h values in 0..1, in
// R,G,B order (B,G,R when bgr): the layout of one NCHW batch slot. The
// returned letterbox maps boxes in model-input pixels back to the original
// image's pixels (img.Width x img.Height).
func Letterbox(dst []float32, img *Image, w, h int, bgr bool) (yolo.Letterbox, error) {
	return letterbox(dst, img.Mat, img.Width, img.Height, w, h, bgr)
}

// LetterboxMat is Letterbox for an image decoded elsewhere (a video
// frame): mat is an 8-bit BGR image at its original size.
func LetterboxMat(dst []float32, mat gocv.Mat, w, h int, bgr bool) (yolo.Letterbox, error) {
	return letterbox(dst, mat, mat.Cols(), mat.Rows(), w, h, bgr)
}

func letterbox(dst []float32, mat gocv.Mat, srcW, srcH, w, h int, bgr bool) (yolo.Letterbox, error) {
	lb := yolo.NewLetterbox(srcW, srcH, w, h)
	switch {
	case len(dst) != 3*w*h:
		return lb, fmt.Errorf("letterbox: tensor has %d values, want 3*%d*%d", len(dst), w, h)
	case mat.Empty() || mat.Type() != gocv.MatTypeCV8UC3:
		return lb, fmt.Errorf("%w: letterbox: want a non-empty 8-bit BGR image", ErrUndecodable)
	case lb.NewW <= 0 || lb.NewH <= 0:
		return lb, fmt.Errorf("letterbox: %dx%d into %dx%d", srcW, srcH, w, h)
	}
	var msg [256]C.char
	rc := C.imaging_letterbox(unsafe.Pointer(mat.Ptr()), (*C.float)(unsafe.Pointer(unsafe.SliceData(dst))),
		C.int(w), C.int(h), C.int(lb.NewW), C.int(lb.NewH), C.int(lb.PadX), C.int(lb.PadY), cbool(bgr),
		(*C.float)(unsafe.Pointer(&unit[0])), C.float(PadValue), &msg[0], C.int(len(msg)))
	if rc != 0 {
		return lb, fmt.Errorf("letterbox: OpenCV: %s", C.GoString(&msg[0]))
	}
	return lb, nil
}

// lbTarget is a letterbox to write beside a decode (decodeSplit): the
// tensor, its size and channel order, and the letterbox of the image's
// original size.
type lbTarget struct {
	dst  []float32
	w, h int
	bgr  bool
	lb   yolo.Letterbox
	pin  runtime.Pinner // dst, which the job keeps
}

// job returns an imaging_lbjob that writes t from the sw x sh pixels at pix
// (C memory, rows step bytes apart), or nil when it cannot make that
// letterbox (see ownResize). The caller frees it, then calls t.pin.Unpin.
func (t *lbTarget) job(pix []byte, step, sw, sh int) *C.imaging_lbjob {
	if len(t.dst) != 3*t.w*t.h || len(t.dst) == 0 || !ownResize(sw, sh, t.lb.NewW, t.lb.NewH) {
		return nil
	}
	t.pin.Pin(&t.dst[0])
	return C.imaging_lbjob_new((*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))), C.size_t(step), C.int(sw), C.int(sh),
		(*C.float)(unsafe.Pointer(&t.dst[0])), C.int(t.w), C.int(t.h), C.int(t.lb.NewW), C.int(t.lb.NewH),
		C.int(t.lb.PadX), C.int(t.lb.PadY), cbool(t.bgr), C.float(PadValue))
}

// ownResize reports whether imaging_lbjob resizes sw x sh to nw x nh as
// cv::resize does: a downscale (or a copy) in both directions, except
// exactly by two both ways, where cv::resize averages 2x2 blocks
// (INTER_AREA) instead.
func ownResize(sw, sh, nw, nh int) bool {
	return sw >= nw && sh >= nh && (sw != 2*nw || sh != 2*nh)
}

// imdecode is gocv.IMDecode without the copy of b that gocv makes.
func imdecode(b []byte, flags gocv.IMReadFlag) (gocv.Mat, error) {
	if len(b) == 0 {
		return gocv.Mat{}, errors.New("no data")
	}
	m := gocv.NewMat()
	var msg [256]C.char
	rc := C.imaging_imdecode((*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.int(len(b)), C.int(flags),
		unsafe.Pointer(m.Ptr()), &msg[0], C.int(len(msg)))
	if rc != 0 {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("OpenCV: %s", C.GoString(&msg[0]))
	}
	return m, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
