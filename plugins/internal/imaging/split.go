package imaging

/*
#cgo pkg-config: libjpeg
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "splitjpeg.h"
#include "cv.h"
*/
import "C"

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/plugins/internal/cthread"
)

// decodeThreads run the decodes: as many at once as cores (the plugins'
// decode pools are no larger), each at its caller's niceness.
var decodeThreads = cthread.NewPool(runtime.NumCPU() + 1)

// splitContexts recycle the decoder's state between images: its unstuffed
// copy of the data and, in a context that decoded on two threads, the
// second thread's coefficients (several MiB for a 4K frame). Two-thread
// decodes are for a lone image, so one such context is kept ([1]); the
// one-thread ones ([0]) run in parallel, one per core.
var splitContexts = [2]chan *C.splitjpeg{make(chan *C.splitjpeg, runtime.NumCPU()+1), make(chan *C.splitjpeg, 1)}

// maxRetained is the most memory a recycled decoder context may keep (a
// 4K frame's two-thread context holds about 15 MiB).
const maxRetained = 32 << 20

// splitPoints are where in the entropy-coded data the second thread
// starts, for full-size decodes [0] and reduced ones [1] (float64 bits).
// The calling thread also runs the inverse DCT, upsampling and colour
// conversion, which cost more at full size, so it takes less of the
// Huffman decoding there. They start from what balanced the threads on
// bus.jpg and its 4K upscale here and follow this machine: each decode
// moves its point by a step towards the balance (tuneSplit).
var splitPoints [2]atomic.Uint64

func init() {
	splitPoints[0].Store(math.Float64bits(0.35))
	splitPoints[1].Store(math.Float64bits(0.4))
}

func splitKind(num int) int {
	if num >= FullScale {
		return 0
	}
	return 1
}

// splitAt is the current split point for a decode at num/8.
func splitAt(num int) float64 { return math.Float64frombits(splitPoints[splitKind(num)].Load()) }

// tuneSplit moves the split point after a decode at num/8: later when the
// calling thread caught up with the second one (which had too much), a
// smaller step earlier when it never did (the second thread may have had
// too little).
func tuneSplit(num int, st splitStats) {
	if !st.Worker || st.Rows || st.MCUs < 256 {
		return
	}
	at := splitAt(num)
	switch {
	case st.Lagged > st.MCUs/100:
		at = min(at+0.01, 0.7)
	case st.Lagged == 0:
		at = max(at-0.005, 0.15)
	default:
		return
	}
	splitPoints[splitKind(num)].Store(math.Float64bits(at))
}

// rowSplit is where in the entropy-coded data the second thread's part
// begins when a JPEG with restart markers is split by rows: the two threads
// then do the same kind of work.
const rowSplit = 0.5

// helperThreads is how many second decode threads this process has made
// (splitjpeg_helpers): they are kept between decodes.
func helperThreads() int { return int(C.splitjpeg_helpers()) }

// parallelDecodes counts the images decoded on two threads.
var parallelDecodes atomic.Uint64

// ParallelDecodes returns how many images this process has decoded on two
// threads (Options.Parallel, when the image was one the decoder takes).
func ParallelDecodes() uint64 { return parallelDecodes.Load() }

// splitStats describes a two-thread decode (tests and benchmarks).
type splitStats struct {
	Worker       bool  // a second thread took part
	MCUs, Copied int64 // MCUs in the image and those the second thread decoded
	Lagged       int64 // MCUs the calling thread decoded after the sync, the second thread being behind
	Moves        int64 // times the second thread was moved ahead of the calling one
	Rows         bool  // split by rows (restart markers): Copied is the second part's MCUs
	// Lettered: the letterbox was written too; Tail is the time from the
	// last row decoded to the letterbox done.
	Lettered bool
	Tail     time.Duration
}

// decodeSplit is decodeTJ with splitjpeg.c's Huffman decoder, on two
// threads when split > 0: the pixels are the same, bit for bit, and even on
// one thread it takes less CPU time than TurboJPEG's. ok is false for a JPEG
// it does not take (progressive, arithmetic-coded, 12-bit, damaged,
// anything libjpeg warns about...): decode those with decodeTJ, which gives
// libjpeg's answer for them.
//
// split is where the second thread starts (splitAt), 0 for none; rowsplit
// (rowSplit, 0 for never) is where it starts when a JPEG with restart
// markers can be split by rows instead. With wait (tests) it decodes its
// whole part before the calling thread starts.
//
// With lt, the letterbox is written too, beside the decode when a second
// thread decodes (see splitjpeg_decode), when its sizes let imaging_lbjob
// make it: st.Lettered says whether it did.
func decodeSplit(b []byte, w, h, num int, split, rowsplit float64, wait bool, lt *lbTarget) (mat gocv.Mat, ok bool, st splitStats) {
	sw, sh := scaled(w, num), scaled(h, num)
	mat = gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8UC3)
	pix, err := mat.DataPtrUint8()
	if err != nil || len(pix) < sw*sh*3 || len(b) == 0 {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	var job *C.imaging_lbjob
	if lt != nil {
		if job = lt.job(pix, mat.Step(), sw, sh); job != nil {
			defer C.imaging_lbjob_free(job)
		}
	}
	pool := splitContexts[0]
	if split > 0 {
		pool = splitContexts[1]
	}
	var s *C.splitjpeg
	select {
	case s = <-pool:
	default:
		if s = C.splitjpeg_new(); s == nil {
			mat.Close()
			return gocv.Mat{}, false, st
		}
	}
	defer func() {
		if C.splitjpeg_retained(s) > maxRetained {
			C.splitjpeg_free(s) // sized for an unusually large image: not kept
			return
		}
		select {
		case pool <- s:
		default:
			C.splitjpeg_free(s)
		}
	}()
	// On a kept thread (plugins/internal/cthread), not in a cgo call, so
	// that Go's sysmon does not preempt the decoding threads and the
	// runtime's. The call's arguments are C memory, and b is pinned,
	// because that thread reads them after the submitting call returns.
	c := (*C.splitjpeg_call)(C.calloc(1, C.size_t(unsafe.Sizeof(C.splitjpeg_call{}))))
	if c == nil {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	defer C.free(unsafe.Pointer(c))
	bp := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b)))
	var pin runtime.Pinner
	pin.Pin(bp)
	defer pin.Unpin()
	*c = C.splitjpeg_call{s: s, buf: bp, len: C.size_t(len(b)), num: C.int(num), dst: (*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))),
		w: C.int(sw), pitch: C.int(mat.Step()), h: C.int(sh), split: C.double(split), rowsplit: C.double(rowsplit), wait: cbool(wait), lb: job}
	if err := decodeThreads.Call(unsafe.Pointer(C.splitjpeg_call_run), unsafe.Pointer(c)); err != nil {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	rc, cs := c.rc, c.stats
	if rc != 0 {
		mat.Close()
		return gocv.Mat{}, false, st
	}
	st = splitStats{Worker: cs.worker != 0, MCUs: int64(cs.mcus), Copied: int64(cs.copied), Lagged: int64(cs.lagged), Moves: int64(cs.moves),
		Rows: cs.rows != 0, Lettered: job != nil, Tail: time.Duration(cs.tail_ns)}
	return mat, true, st
}
