package imaging

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>

// imaging_tj_decode decompresses a JPEG at the scaled size w x h (one of
// the TJSCALED sizes) into BGR pixels with the given row pitch. It returns
// 0 on success (warnings included: the image is decoded, as libjpeg does
// for OpenCV), -1 on a fatal error.
static int imaging_tj_decode(tjhandle h, const unsigned char *buf, unsigned long len,
                             unsigned char *dst, int w, int pitch, int ht, int flags) {
	if (tjDecompress2(h, buf, len, dst, w, pitch, ht, TJPF_BGR, flags) == 0) return 0;
	return tjGetErrorCode(h) == TJERR_WARNING ? 0 : -1;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"gocv.io/x/gocv"
)

// tjFlags are the TurboJPEG decompression flags: the accurate integer IDCT
// and fancy upsampling (libjpeg's defaults, which OpenCV uses too, so a
// full-scale decode is bit-identical to OpenCV's), and at most 500 scans of
// a progressive JPEG (a progressive file with thousands of tiny scans is a
// known way to burn CPU).
const tjFlags = C.TJFLAG_ACCURATEDCT | C.TJFLAG_LIMITSCANS

// tjHandles recycles TurboJPEG decompressors (each holds a libjpeg
// decompression object); at most cap(tjHandles) stay allocated.
var tjHandles = make(chan C.tjhandle, 32)

func getTJ() (C.tjhandle, error) {
	select {
	case h := <-tjHandles:
		return h, nil
	default:
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("TurboJPEG: cannot create a decompressor")
	}
	return h, nil
}

func putTJ(h C.tjhandle) {
	select {
	case tjHandles <- h:
	default:
		C.tjDestroy(h)
	}
}

// scaled returns ceil(dim * num / 8), the size libjpeg decodes a dimension
// to at the DCT scale factor num/8 (TJSCALED).
func scaled(dim, num int) int { return (dim*num + 7) / 8 }

// decodeTJ decodes a JPEG of w x h stored pixels at the DCT scale num/8
// (1..8) into a new BGR Mat of scaled(w) x scaled(h), without copying b.
func decodeTJ(b []byte, w, h, num int) (gocv.Mat, error) {
	sw, sh := scaled(w, num), scaled(h, num)
	mat := gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8UC3)
	pix, err := mat.DataPtrUint8()
	if err != nil || len(pix) < sw*sh*3 {
		mat.Close()
		return gocv.Mat{}, fmt.Errorf("allocate a %dx%d image: %v", sw, sh, err)
	}
	tj, err := getTJ()
	if err != nil {
		mat.Close()
		return gocv.Mat{}, err
	}
	defer putTJ(tj)
	// b and pix stay alive (and pix is C memory) for the call; C keeps neither.
	rc := C.imaging_tj_decode(tj, (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.ulong(len(b)),
		(*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))), C.int(sw), C.int(mat.Step()), C.int(sh), tjFlags)
	if rc != 0 {
		msg := C.GoString(C.tjGetErrorStr2(tj))
		mat.Close()
		return gocv.Mat{}, fmt.Errorf("libjpeg-turbo: %s", msg)
	}
	return mat, nil
}
