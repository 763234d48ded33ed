package yolo

import "math"

// Letterbox is the geometry of an Ultralytics letterbox: the source image is
// scaled by Scale (keeping its aspect ratio) to NewW x NewH and centred in a
// DstW x DstH canvas with PadX columns on the left and PadY rows on top.
type Letterbox struct {
	// SrcW and SrcH are the original image size in pixels.
	SrcW, SrcH int
	// DstW and DstH are the network input size in pixels.
	DstW, DstH int
	// NewW and NewH are the size of the resized image before padding.
	NewW, NewH int
	// Scale is the resize factor, min(DstW/SrcW, DstH/SrcH).
	Scale float64
	// PadX and PadY are the left and top padding in pixels.
	PadX, PadY int
}

// NewLetterbox computes the letterbox of a srcW x srcH image into a dstW x dstH
// input exactly as Ultralytics' LetterBox(center=True, scaleup=True) does,
// including Python's round-half-to-even and the -0.1/+0.1 split of odd padding.
func NewLetterbox(srcW, srcH, dstW, dstH int) Letterbox {
	l := Letterbox{SrcW: srcW, SrcH: srcH, DstW: dstW, DstH: dstH}
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return l
	}
	l.Scale = math.Min(float64(dstW)/float64(srcW), float64(dstH)/float64(srcH))
	l.NewW = int(math.RoundToEven(float64(srcW) * l.Scale))
	l.NewH = int(math.RoundToEven(float64(srcH) * l.Scale))
	l.NewW = min(max(l.NewW, 1), dstW)
	l.NewH = min(max(l.NewH, 1), dstH)
	dw := float64(dstW-l.NewW) / 2
	dh := float64(dstH-l.NewH) / 2
	l.PadX = int(math.RoundToEven(dw - 0.1))
	l.PadY = int(math.RoundToEven(dh - 0.1))
	return l
}

// PadRight and PadBottom return the right and bottom padding in pixels.
func (l Letterbox) PadRight() int { return l.DstW - l.NewW - l.PadX }

// PadBottom returns the bottom padding in pixels.
func (l Letterbox) PadBottom() int { return l.DstH - l.NewH - l.PadY }

// Inverse maps a box from network-input pixels to original-image pixels,
// clipped to the image: (v - pad) / scale.
func (l Letterbox) Inverse(b Box) Box {
	if l.Scale == 0 {
		return b
	}
	inv := float32(1 / l.Scale)
	px, py := float32(l.PadX), float32(l.PadY)
	w, h := float32(l.SrcW), float32(l.SrcH)
	return Box{
		X1: clamp((b.X1-px)*inv, 0, w),
		Y1: clamp((b.Y1-py)*inv, 0, h),
		X2: clamp((b.X2-px)*inv, 0, w),
		Y2: clamp((b.Y2-py)*inv, 0, h),
	}
}

// Unletterbox maps every detection's box to original-image pixels in place.
func (l Letterbox) Unletterbox(dets []Detection) {
	for i := range dets {
		dets[i].Box = l.Inverse(dets[i].Box)
	}
}

func clamp(v, lo, hi float32) float32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
