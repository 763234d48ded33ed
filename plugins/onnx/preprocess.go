package onnx

import (
	"fmt"
	"image"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/yolo"
)

// HardMaxPixels bounds the pixels of any image (width*height) whatever
// DetectParams.MaxPixels says, so a decoded image never takes more than
// about 300 MB.
const HardMaxPixels = 100_000_000

// minSide is the smallest width or height accepted.
const minSide = 2

// padValue is the letterbox padding (114) in network units.
const padValue = float32(114) / 255

// unit maps a byte to its value / 255, as Ultralytics computes it in float32.
var unit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// decoded is an image decoded and letterboxed into an input plane set.
type decoded struct {
	width, height int
	lb            yolo.Letterbox
	decode        time.Duration
	preprocess    time.Duration
}

// imageErr builds a per-image error.
func imageErr(code, format string, args ...any) *backend.ImageError {
	return &backend.ImageError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// preprocess decodes an encoded image with OpenCV and letterboxes it exactly
// as Ultralytics does (INTER_LINEAR resize to the unpadded size, centred,
// pad 114, BGR->RGB unless bgr, /255) into dst, the 3*h*w float32 CHW planes
// of one batch slot. It refuses images by their header before decoding when
// they are too large or too small.
func preprocess(b []byte, dst []float32, w, h int, bgr bool, maxPixels int64) (decoded, *backend.ImageError) {
	var d decoded
	t0 := time.Now()
	hdr, err := readHeader(b)
	if err != nil {
		return d, imageErr(backend.ImageUndecodable, "%v", err)
	}
	if ie := checkSize(hdr.width, hdr.height, maxPixels, hdr.format); ie != nil {
		return d, ie
	}
	mat, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		return d, imageErr(backend.ImageUndecodable, "decode %s: %v", hdr.format, err)
	}
	defer mat.Close()
	if mat.Empty() {
		return d, imageErr(backend.ImageUndecodable, "OpenCV could not decode the %s image", hdr.format)
	}
	if mat.Type() != gocv.MatTypeCV8UC3 {
		return d, imageErr(backend.ImageUndecodable, "decoded %s image has OpenCV type %v, want 8-bit BGR", hdr.format, mat.Type())
	}
	d.width, d.height = mat.Cols(), mat.Rows() // EXIF orientation may have swapped them
	if ie := checkSize(d.width, d.height, maxPixels, hdr.format); ie != nil {
		return d, ie
	}
	t1 := time.Now()
	d.decode = t1.Sub(t0)

	d.lb = yolo.NewLetterbox(d.width, d.height, w, h)
	src := &mat
	if d.lb.NewW != d.width || d.lb.NewH != d.height {
		resized := gocv.NewMat()
		defer resized.Close()
		gocv.Resize(mat, &resized, image.Pt(d.lb.NewW, d.lb.NewH), 0, 0, gocv.InterpolationLinear)
		src = &resized
	}
	pix, err := src.DataPtrUint8()
	if err != nil {
		return d, imageErr(backend.ImageUndecodable, "resized image: %v", err)
	}
	fillPlanes(dst, pix, src.Step(), d.lb, bgr)
	d.preprocess = time.Since(t1)
	return d, nil
}

// checkSize refuses images under minSide or over the pixel limits.
func checkSize(w, h int, maxPixels int64, format string) *backend.ImageError {
	if w < minSide || h < minSide {
		return imageErr(backend.ImageTooSmall, "%s image is %dx%d pixels, want at least %dx%d", format, w, h, minSide, minSide)
	}
	px := int64(w) * int64(h)
	limit := int64(HardMaxPixels)
	if maxPixels > 0 && maxPixels < limit {
		limit = maxPixels
	}
	if px > limit {
		return imageErr(backend.ImageTooLarge, "%s image is %dx%d = %d pixels, the limit is %d", format, w, h, px, limit)
	}
	return nil
}

// fillPlanes writes the letterboxed image into dst (3 planes of DstW*DstH):
// pix holds the resized BGR image (NewW x NewH, step bytes per row), the
// rest is padding.
func fillPlanes(dst []float32, pix []uint8, step int, lb yolo.Letterbox, bgr bool) {
	W, H := lb.DstW, lb.DstH
	n := W * H
	p0, p1, p2 := dst[0:n], dst[n:2*n], dst[2*n:3*n] // R, G, B (or B, G, R)
	c0, c2 := 2, 0
	if bgr {
		c0, c2 = 0, 2
	}
	fill := func(p []float32) {
		for i := range p {
			p[i] = padValue
		}
	}
	top := lb.PadY * W
	bottom := (lb.PadY + lb.NewH) * W
	for _, p := range [][]float32{p0, p1, p2} {
		fill(p[:top])
		fill(p[bottom:])
	}
	for y := range lb.NewH {
		row := (lb.PadY + y) * W
		left, right := row+lb.PadX, row+lb.PadX+lb.NewW
		for _, p := range [][]float32{p0, p1, p2} {
			fill(p[row:left])
			fill(p[right : row+W])
		}
		s := pix[y*step : y*step+lb.NewW*3]
		r0, r1, r2 := p0[left:right], p1[left:right], p2[left:right]
		for x := range r0 {
			px := s[x*3 : x*3+3 : x*3+3]
			r0[x] = unit[px[c0]]
			r1[x] = unit[px[1]]
			r2[x] = unit[px[c2]]
		}
	}
}
