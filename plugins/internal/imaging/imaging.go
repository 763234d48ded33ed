// Package imaging turns encoded images and video frames into model input
// tensors for every backend plugin (ONNX Runtime today; TensorRT and RKNN
// next): it decodes JPEGs with libjpeg-turbo's TurboJPEG API directly at the
// smallest power-of-two DCT scale (1/8, 1/4, 1/2) that still covers the
// model's letterbox (see ChooseScale), other formats with OpenCV, and letterboxes an 8-bit BGR image into a caller's
// float32 CHW planes exactly as Ultralytics does (INTER_LINEAR, centred, pad
// 114, /255). Header and size checks are sdk/imageheader's, the same the
// daemon makes. It uses cgo (OpenCV through gocv, libturbojpeg) and is
// imported only by plugins.
//
// The three entry points:
//
//	Decode(b, w, h, opt)        encoded bytes -> *Image (BGR Mat + original size)
//	Letterbox(dst, img, w, h)   *Image -> letterbox in dst, boxes mapping
//	LetterboxMat(dst, frame, w, h) a decoded frame (video) -> the same
//
// Preprocess does Decode and Letterbox in one call and times both.
package imaging

import (
	"errors"
	"fmt"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/imageheader"
	"github.com/azaion/edge/sdk/yolo"
)

// ErrUndecodable is the error of an image whose header is fine but whose
// data the decoder refused.
var ErrUndecodable = errors.New("undecodable image")

// FullScale is the DCT scale numerator of a full-size decode (8/8).
const FullScale = 8

// Options tune Decode.
type Options struct {
	// MaxPixels is the caller's pixel limit (0 or over
	// imageheader.HardMaxPixels means HardMaxPixels).
	MaxPixels int64
	// Scale forces the JPEG DCT scale to Scale/8 (1..8; 8 is full size)
	// instead of the smallest one that covers the letterbox. Tests and
	// benchmarks use it to compare scales; it may make the decoded image
	// smaller than the letterbox (then the letterbox scales it up).
	Scale int
	// Parallel decodes a baseline JPEG on two threads (splitjpeg.c: the
	// same pixels, about 40% less time, about 15% more CPU). Set it for a
	// lone image on an otherwise idle machine, where it lowers latency;
	// under load it only costs CPU.
	Parallel bool
}

// Image is a decoded image.
type Image struct {
	// Mat is the decoded 8-bit BGR image, EXIF orientation applied, at the
	// reduced size of Scale/8 for a JPEG decoded at a reduced scale.
	Mat gocv.Mat
	// Width and Height are the original image's size as displayed (after
	// EXIF orientation): detections are reported in these pixels.
	Width, Height int
	// Format is the encoded format.
	Format imageheader.Format
	// Scale is the DCT scale numerator the image was decoded at (Scale/8;
	// FullScale for a full-size decode and for formats other than JPEG).
	Scale int
}

// Close frees the decoded pixels.
func (im *Image) Close() error {
	if im == nil {
		return nil
	}
	return im.Mat.Close()
}

// ImageError turns an error of Decode, Letterbox or Preprocess into the
// per-image error of the backend contract: too_small, too_many_pixels or
// undecodable.
func ImageError(err error) *backend.ImageError {
	if err == nil {
		return nil
	}
	code := backend.ImageUndecodable
	switch {
	case errors.Is(err, imageheader.ErrTooSmall):
		code = backend.ImageTooSmall
	case errors.Is(err, imageheader.ErrTooLarge):
		code = backend.ImageTooLarge
	}
	return &backend.ImageError{Code: code, Message: err.Error()}
}

// ChooseScale returns the DCT scale numerator M (M/8) at which a JPEG with
// header h is decoded for a letterbox into w x ht: the smallest of 1, 2, 4
// and 8 whose result is still at least as large as the letterbox needs on
// both sides (so the letterbox only ever scales down). An image the
// letterbox scales up gets FullScale.
//
// Only the power-of-two scales are candidates: libjpeg-turbo has SIMD
// inverse DCTs for 8x8, 4x4, 2x2 and 1x1 blocks only, and its 3/8, 5/8,
// 6/8 and 7/8 decodes cost more CPU than a full-size one (docs/onnx.md has
// the figures), so a non-power-of-two scale is never the cheaper choice.
func ChooseScale(h imageheader.Header, w, ht int) int {
	ow, oh := h.OrientedSize()
	lb := yolo.NewLetterbox(ow, oh, w, ht)
	for m := 1; m < FullScale; m *= 2 {
		if scaled(ow, m) >= lb.NewW && scaled(oh, m) >= lb.NewH {
			return m
		}
	}
	return FullScale
}

// Decode decodes an encoded image (JPEG, PNG, BMP, WebP) for a w x h
// letterbox. The header is checked first (sdk/imageheader: format, size
// limits, truncation), so nothing is allocated for an image that would be
// refused. A JPEG with 1 or 3 components is decoded at ChooseScale (or
// opt.Scale) by libjpeg with splitjpeg.c's Huffman decoder (TurboJPEG's
// pixels bit for bit, in about 20% less CPU time; on two threads with
// opt.Parallel), or by TurboJPEG when it is one that decoder leaves
// (progressive, damaged...); its EXIF orientation is applied as OpenCV
// does. A CMYK JPEG is decoded by OpenCV at the largest of its reduced
// scales (1/2, 1/4, 1/8) that is not under ChooseScale; other formats by
// OpenCV at full size. The encoded bytes are read in place (a JPEG's
// entropy-coded data is unstuffed into a recycled buffer). Errors wrap
// imageheader's sentinels or ErrUndecodable (see ImageError).
func Decode(b []byte, w, h int, opt Options) (*Image, error) {
	im, _, err := decode(b, w, h, opt, nil)
	return im, err
}

// decode is Decode; with lt, a JPEG decoded on two threads (opt.Parallel)
// is letterboxed beside its decode into lt when it can be (decodeSplit),
// and st says whether it was.
func decode(b []byte, w, h int, opt Options, lt *lbTarget) (*Image, splitStats, error) {
	var st splitStats
	hdr, err := imageheader.Read(b)
	if err != nil {
		return nil, st, err
	}
	if err := hdr.Check(opt.MaxPixels); err != nil {
		return nil, st, err
	}
	num := FullScale
	if hdr.Format == imageheader.JPEG {
		num = ChooseScale(hdr, w, h)
		if opt.Scale >= 1 && opt.Scale <= FullScale {
			num = opt.Scale
		}
	}
	im := &Image{Format: hdr.Format, Scale: FullScale}
	switch {
	case hdr.Format == imageheader.JPEG && hdr.Components != 4:
		split, rows := 0.0, 0.0
		if opt.Parallel {
			split, rows = splitAt(num), rowSplit
		}
		var ok bool
		if lt != nil && (!opt.Parallel || hdr.Orientation > 1) {
			lt = nil // beside a two-thread decode only, and the pixels as decoded
		}
		if lt != nil {
			lt.lb = yolo.NewLetterbox(hdr.Width, hdr.Height, lt.w, lt.h)
			defer lt.pin.Unpin()
		}
		im.Mat, ok, st = decodeSplit(b, hdr.Width, hdr.Height, num, split, rows, false, lt)
		tuneSplit(num, st)
		if ok && opt.Parallel {
			parallelDecodes.Add(1)
		}
		if !ok {
			st = splitStats{}
			im.Mat, err = decodeTJ(b, hdr.Width, hdr.Height, num)
		}
		if err != nil {
			return nil, st, fmt.Errorf("%w: decode JPEG: %v", ErrUndecodable, err)
		}
		if err := orient(&im.Mat, hdr.Orientation); err != nil {
			im.Close()
			return nil, st, fmt.Errorf("%w: apply EXIF orientation %d: %v", ErrUndecodable, hdr.Orientation, err)
		}
		im.Width, im.Height = hdr.OrientedSize()
		im.Scale = num
	default:
		flags, reduced := gocv.IMReadColor, FullScale
		if hdr.Format == imageheader.JPEG { // CMYK: OpenCV converts it; use its reduced modes
			flags, reduced = reducedFlags(num)
		}
		if im.Mat, err = imdecode(b, flags); err != nil {
			return nil, st, fmt.Errorf("%w: decode %s: %v", ErrUndecodable, hdr.Format, err)
		}
		if im.Mat.Empty() {
			im.Close()
			return nil, st, fmt.Errorf("%w: OpenCV could not decode the %s image", ErrUndecodable, hdr.Format)
		}
		im.Width, im.Height, im.Scale = im.Mat.Cols(), im.Mat.Rows(), reduced
		if reduced != FullScale {
			im.Width, im.Height = hdr.OrientedSize()
		}
	}
	if t := im.Mat.Type(); t != gocv.MatTypeCV8UC3 {
		im.Close()
		return nil, st, fmt.Errorf("%w: decoded %s image has OpenCV type %v, want 8-bit BGR", ErrUndecodable, hdr.Format, t)
	}
	if err := imageheader.CheckSize(hdr.Format, im.Width, im.Height, opt.MaxPixels); err != nil { // what the decoder says
		im.Close()
		return nil, st, err
	}
	return im, st, nil
}

// reducedFlags returns OpenCV's largest reduced-colour mode (1/1, 1/2, 1/4,
// 1/8) whose scale is at least num/8, and its scale numerator.
func reducedFlags(num int) (gocv.IMReadFlag, int) {
	switch {
	case num <= 1:
		return gocv.IMReadReducedColor8, 1
	case num <= 2:
		return gocv.IMReadReducedColor4, 2
	case num <= 4:
		return gocv.IMReadReducedColor2, 4
	}
	return gocv.IMReadColor, FullScale
}

// orient applies an EXIF orientation to m in place, as OpenCV's
// ExifTransform does.
func orient(m *gocv.Mat, o int) error {
	if o <= 1 || o > 8 {
		return nil
	}
	out := gocv.NewMat()
	src := *m
	if o >= 5 {
		gocv.Transpose(src, &out)
		src = out
	}
	flip, ok := map[int]int{2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}[o]
	if ok {
		dst := gocv.NewMat()
		gocv.Flip(src, &dst, flip)
		out.Close()
		out = dst
	}
	if out.Empty() {
		out.Close()
		return errors.New("OpenCV returned an empty image")
	}
	m.Close()
	*m = out
	return nil
}

// Prepared describes an image Preprocess wrote into a tensor.
type Prepared struct {
	// Width and Height are the original image's size as displayed.
	Width, Height int
	// Letterbox maps boxes in model-input pixels to original pixels.
	Letterbox yolo.Letterbox
	// Scale is the DCT scale numerator the image was decoded at (Scale/8).
	Scale int
	// Decode is the time to check the header and decode; Preprocess the
	// time to resize and fill the tensor.
	Decode, Preprocess time.Duration
}

// Preprocess decodes an encoded image (Decode) and letterboxes it into dst,
// the 3*w*h float32 CHW planes of one batch slot (Letterbox). On an error
// the returned Prepared still holds the size when it was known.
func Preprocess(b []byte, dst []float32, w, h int, bgr bool, opt Options) (Prepared, error) {
	var p Prepared
	t0 := time.Now()
	var lt *lbTarget
	if opt.Parallel {
		lt = &lbTarget{dst: dst, w: w, h: h, bgr: bgr}
	}
	im, st, err := decode(b, w, h, opt, lt)
	t1 := time.Now()
	p.Decode = t1.Sub(t0)
	if err != nil {
		return p, err
	}
	defer im.Close()
	p.Width, p.Height, p.Scale = im.Width, im.Height, im.Scale
	if st.Lettered {
		// Written beside the decode: preprocessing is what it took after
		// the last row was decoded.
		p.Letterbox, p.Preprocess = lt.lb, min(st.Tail, p.Decode)
		p.Decode -= p.Preprocess
		return p, nil
	}
	p.Letterbox, err = Letterbox(dst, im, w, h, bgr)
	p.Preprocess = time.Since(t1)
	return p, err
}
