package imaging

/*
#cgo pkg-config: libjpeg
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "splitjpeg.h"
*/
import "C"

import (
	"unsafe"

	"gocv.io/x/gocv"
)

// splitContexts recycles the two-thread decoder's state (its unstuffed
// copy of the data and the second thread's coefficients stay allocated
// between images); at most cap(splitContexts) are kept.
var splitContexts = make(chan *C.splitjpeg, 2)

// splitAt is where in the entropy-coded data the second thread starts, by
// DCT scale: the calling thread also runs the inverse DCT, upsampling and
// colour conversion, which cost more at larger scales, so it takes less of
// the Huffman decoding there (measured on bus.jpg and its 4K upscale).
func splitAt(num int) float64 {
	switch {
	case num >= 8:
		return 0.3
	case num >= 4:
		return 0.4
	}
	return 0.45
}

// splitStats describes a two-thread decode (tests and benchmarks).
type splitStats struct {
	Worker       bool  // a second thread took part
	MCUs, Copied int64 // MCUs in the image and those the second thread decoded
	SyncBits     int64 // bits the second thread decoded before meeting the true stream, -1 never
}

// decodeSplit is decodeTJ on two threads (splitjpeg.c): the pixels are the
// same, bit for bit. ok is false for a JPEG it does not take (progressive,
// arithmetic-coded, 12-bit, damaged, anything libjpeg warns about...):
// decode those with decodeTJ, which gives libjpeg's answer for them.
//
// split is where the second thread starts (splitAt); with wait (tests) it
// decodes its whole part before the calling thread starts.
func decodeSplit(b []byte, w, h, num int, split float64, wait bool) (mat gocv.Mat, ok bool, st splitStats) {
	sw, sh := scaled(w, num), scaled(h, num)
	mat = gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8UC3)
	pix, err := mat.DataPtrUint8()
	if err != nil || len(pix) < sw*sh*3 || len(b) == 0 {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	var s *C.splitjpeg
	select {
	case s = <-splitContexts:
	default:
		if s = C.splitjpeg_new(); s == nil {
			mat.Close()
			return gocv.Mat{}, false, st
		}
	}
	defer func() {
		select {
		case splitContexts <- s:
		default:
			C.splitjpeg_free(s)
		}
	}()
	var cs C.splitjpeg_stats
	// b and pix stay alive (pix is C memory) for the call; C keeps neither.
	rc := C.splitjpeg_decode(s, (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b)), C.int(num),
		(*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))), C.int(sw), C.int(mat.Step()), C.int(sh),
		C.double(split), cbool(wait), &cs, nil, 0)
	if rc != 0 {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	st = splitStats{Worker: cs.worker != 0, MCUs: int64(cs.mcus), Copied: int64(cs.copied), SyncBits: int64(cs.sync_bits)}
	return mat, true, st
}
