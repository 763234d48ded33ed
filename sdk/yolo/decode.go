package yolo

import (
	"fmt"
	"slices"
)

// Decoder decodes YOLO outputs, reusing its scratch buffers between calls so
// that decoding allocates nothing per anchor. A Decoder is not safe for
// concurrent use; use one per goroutine (the zero value is ready).
type Decoder struct {
	best  []float32
	cands []Detection
	keep  []bool
}

// DecodeRaw decodes one image of a yolo-raw output: data holds the image's
// [4+nc, anchors] slice of the [B, 4+nc, A] tensor in row-major order (rows
// cx, cy, w, h in input pixels, then nc sigmoid class scores). It keeps the
// best class per anchor with a score above p.Conf, applies the classes
// filter, class-aware greedy NMS at p.IoU and the p.MaxDet cap, and appends
// the detections (boxes x1,y1,x2,y2 in input pixels, highest score first) to dst.
func (d *Decoder) DecodeRaw(dst []Detection, data []float32, nc, anchors int, p Params) ([]Detection, error) {
	if nc <= 0 || anchors <= 0 {
		return dst, fmt.Errorf("yolo-raw: bad shape: %d classes, %d anchors", nc, anchors)
	}
	if len(data) < (4+nc)*anchors {
		return dst, fmt.Errorf("yolo-raw: have %d values, want (4+%d)*%d", len(data), nc, anchors)
	}
	p = p.WithDefaults()
	if cap(d.best) < anchors {
		d.best = make([]float32, anchors)
	}
	best := d.best[:anchors]
	// Best score per anchor, scanning rows so memory is read sequentially,
	// without branches (max); the class is looked up afterwards only for
	// the few anchors over the threshold. A NaN score makes its anchor's
	// best NaN, which is never over the threshold.
	copy(best, data[4*anchors:5*anchors])
	for c := 1; c < nc; c++ {
		maxRow(best, data[(4+c)*anchors:(5+c)*anchors])
	}
	cx := data[0:anchors]
	cy := data[anchors : 2*anchors]
	bw := data[2*anchors : 3*anchors]
	bh := data[3*anchors : 4*anchors]
	cands := d.cands[:0]
	for a := range anchors {
		s := best[a]
		if !(s > p.Conf) {
			continue
		}
		c := 0 // the first class with the best score, as a strict > scan finds it
		for k := a + 4*anchors; c < nc && data[k] != s; k += anchors {
			c++
		}
		if c == nc || len(p.Classes) > 0 && !slices.Contains(p.Classes, c) {
			continue
		}
		hw, hh := bw[a]/2, bh[a]/2
		cands = append(cands, Detection{
			ClassID: c,
			Score:   s,
			Box:     Box{X1: cx[a] - hw, Y1: cy[a] - hh, X2: cx[a] + hw, Y2: cy[a] + hh},
		})
	}
	d.cands = cands
	sortByScore(cands)
	return d.nms(dst, cands, p), nil
}

// DecodeNMS decodes one image of a yolo-nms output: data holds the image's
// [n, 6] slice of the [B, N, 6] tensor (x1, y1, x2, y2, score, class in input
// pixels, zero-padded). It keeps rows scoring above p.Conf, applies the
// classes filter and the p.MaxDet cap, and appends them (highest score first) to dst.
func (d *Decoder) DecodeNMS(dst []Detection, data []float32, n int, p Params) ([]Detection, error) {
	if n < 0 || len(data) < n*6 {
		return dst, fmt.Errorf("yolo-nms: have %d values, want %d*6", len(data), n)
	}
	p = p.WithDefaults()
	start := len(dst)
	for i := range n {
		r := data[i*6 : i*6+6]
		s := r[4]
		if !(s > p.Conf) {
			continue
		}
		c := int(r[5] + 0.5)
		if r[5] < 0 {
			continue
		}
		if len(p.Classes) > 0 && !slices.Contains(p.Classes, c) {
			continue
		}
		dst = append(dst, Detection{ClassID: c, Score: s, Box: Box{X1: r[0], Y1: r[1], X2: r[2], Y2: r[3]}})
	}
	sortByScore(dst[start:])
	if len(dst)-start > p.MaxDet {
		dst = dst[:start+p.MaxDet]
	}
	return dst, nil
}

// maxNMS caps the candidates that enter NMS, as Ultralytics does.
const maxNMS = 30000

// nms appends to dst the candidates (sorted by score, highest first) that
// survive class-aware greedy suppression, at most p.MaxDet of them.
func (d *Decoder) nms(dst []Detection, cands []Detection, p Params) []Detection {
	if len(cands) > maxNMS {
		cands = cands[:maxNMS]
	}
	if cap(d.keep) < len(cands) {
		d.keep = make([]bool, len(cands))
	}
	suppressed := d.keep[:len(cands)]
	clear(suppressed)
	kept := 0
	for i := range cands {
		if suppressed[i] {
			continue
		}
		dst = append(dst, cands[i])
		kept++
		if kept >= p.MaxDet {
			break
		}
		bi := cands[i].Box
		for j := i + 1; j < len(cands); j++ {
			if !suppressed[j] && cands[j].ClassID == cands[i].ClassID && IoU(bi, cands[j].Box) > p.IoU {
				suppressed[j] = true
			}
		}
	}
	return dst
}

// sortByScore sorts detections by score, highest first (stable, so equal
// scores keep anchor order).
func sortByScore(d []Detection) {
	slices.SortStableFunc(d, func(a, b Detection) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
}

// IoU returns the intersection over union of two boxes (0 when either is empty).
func IoU(a, b Box) float32 { return IoUXYXY(a.X1, a.Y1, a.X2, a.Y2, b.X1, b.Y1, b.X2, b.Y2) }

// IoUXYXY returns the intersection over union of two boxes given by their
// corners, in either precision (0 when either is empty).
func IoUXYXY[T float32 | float64](ax1, ay1, ax2, ay2, bx1, by1, bx2, by2 T) T {
	iw := min(ax2, bx2) - max(ax1, bx1)
	ih := min(ay2, by2) - max(ay1, by1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (ax2-ax1)*(ay2-ay1) + (bx2-bx1)*(by2-by1) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// DecodeRaw is Decoder.DecodeRaw with a fresh Decoder.
func DecodeRaw(data []float32, nc, anchors int, p Params) ([]Detection, error) {
	var d Decoder
	return d.DecodeRaw(nil, data, nc, anchors, p)
}

// DecodeNMS is Decoder.DecodeNMS with a fresh Decoder.
func DecodeNMS(data []float32, n int, p Params) ([]Detection, error) {
	var d Decoder
	return d.DecodeNMS(nil, data, n, p)
}

// maxRowGo is maxRow in Go (the rest of a row, or a CPU without AVX2).
func maxRowGo(best, row []float32) {
	row = row[:len(best)]
	for a, s := range row {
		best[a] = max(best[a], s)
	}
}
