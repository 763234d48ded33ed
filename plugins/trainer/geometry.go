package trainer

import (
	"math"

	"github.com/azaion/edge/sdk/yololabel"
)

// mat3 is a 3x3 projective transform in row-major order, acting on
// continuous image coordinates: pixel (i, j) covers [i, i+1] x [j, j+1].
type mat3 [9]float64

func identity() mat3 { return mat3{1, 0, 0, 0, 1, 0, 0, 0, 1} }

// mul returns a*b (apply b first, then a).
func (a mat3) mul(b mat3) mat3 {
	var r mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			r[i*3+j] = a[i*3]*b[j] + a[i*3+1]*b[3+j] + a[i*3+2]*b[6+j]
		}
	}
	return r
}

func translate(tx, ty float64) mat3 { return mat3{1, 0, tx, 0, 1, ty, 0, 0, 1} }

func (a mat3) apply(x, y float64) (float64, float64) {
	w := a[6]*x + a[7]*y + a[8]
	return (a[0]*x + a[1]*y + a[2]) / w, (a[3]*x + a[4]*y + a[5]) / w
}

func (a mat3) isAffine() bool { return a[6] == 0 && a[7] == 0 && a[8] == 1 }

// opencv returns the matrix in OpenCV's pixel-centre convention (pixel i at
// coordinate i): T(-0.5) * a * T(+0.5).
func (a mat3) opencv() mat3 { return translate(-0.5, -0.5).mul(a).mul(translate(0.5, 0.5)) }

// perspectiveFrom returns the homography mapping the four src points to the
// four dst points (as cv::getPerspectiveTransform does).
func perspectiveFrom(src, dst [4][2]float64) mat3 {
	// Solve the 8x8 system for h0..h7 (h8 = 1).
	var a [8][9]float64
	for i := 0; i < 4; i++ {
		x, y, u, v := src[i][0], src[i][1], dst[i][0], dst[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -x * u, -y * u, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -x * v, -y * v, v}
	}
	for c := 0; c < 8; c++ {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		if a[c][c] == 0 {
			return identity()
		}
		for r := 0; r < 8; r++ {
			if r == c {
				continue
			}
			f := a[r][c] / a[c][c]
			for k := c; k < 9; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	var m mat3
	for i := 0; i < 8; i++ {
		m[i] = a[i][8] / a[i][i]
	}
	m[8] = 1
	return m
}

// transformBoxes maps boxes of a w x h image through m: the four corners of
// each box are transformed, their enclosing box is clipped to the image, and
// boxes with less than minVisible of their transformed area inside (or under
// one pixel wide or high) are dropped. It returns the kept boxes and the
// number dropped.
func transformBoxes(boxes []yololabel.Box, m mat3, w, h int, minVisible float64) ([]yololabel.Box, int) {
	out := make([]yololabel.Box, 0, len(boxes))
	dropped := 0
	fw, fh := float64(w), float64(h)
	for _, b := range boxes {
		x1, y1, x2, y2 := b.Rect(w, h)
		minX, minY := math.Inf(1), math.Inf(1)
		maxX, maxY := math.Inf(-1), math.Inf(-1)
		for _, p := range [4][2]float64{{x1, y1}, {x2, y1}, {x2, y2}, {x1, y2}} {
			x, y := m.apply(p[0], p[1])
			minX, maxX = math.Min(minX, x), math.Max(maxX, x)
			minY, maxY = math.Min(minY, y), math.Max(maxY, y)
		}
		area := (maxX - minX) * (maxY - minY)
		cx1, cy1 := math.Max(minX, 0), math.Max(minY, 0)
		cx2, cy2 := math.Min(maxX, fw), math.Min(maxY, fh)
		if !(area > 0) || cx2-cx1 < 1 || cy2-cy1 < 1 || (cx2-cx1)*(cy2-cy1)/area < minVisible {
			dropped++
			continue
		}
		out = append(out, yololabel.FromRect(b.Class, cx1, cy1, cx2, cy2, w, h))
	}
	return out, dropped
}
