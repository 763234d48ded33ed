// Package synthdata draws small synthetic detection images for tests and
// benchmarks: filled rectangles (class 0), ellipses (class 1) and triangles
// (class 2) of random colours and sizes on a noise background, with their
// YOLO labels. A YOLO model learns them in a few epochs from scratch, which
// lets tests train, export and evaluate real models on a CPU. It is imported
// only by tests and benchmarks.
package synthdata

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/azaion/edge/sdk/yololabel"
)

// Classes are the class slots drawn: 0 rectangle, 1 ellipse, 2 triangle.
const Classes = 3

// Options configure the images.
type Options struct {
	// Size is the width and height in pixels (default 160).
	Size int
	// MinObj and MaxObj bound the objects per image (default 1..3).
	MinObj, MaxObj int
	// MinSide and MaxSide bound an object's width and height as a fraction
	// of Size (default 0.15..0.38).
	MinSide, MaxSide float64
}

func (o Options) withDefaults() Options {
	if o.Size == 0 {
		o.Size = 160
	}
	if o.MinObj == 0 {
		o.MinObj = 1
	}
	if o.MaxObj < o.MinObj {
		o.MaxObj = max(3, o.MinObj)
	}
	if o.MinSide == 0 {
		o.MinSide = 0.15
	}
	if o.MaxSide <= o.MinSide {
		o.MaxSide = 0.38
	}
	return o
}

// Image draws one image from rng and returns it as JPEG with its labels.
func Image(rng *rand.Rand, o Options) ([]byte, []yololabel.Box) {
	o = o.withDefaults()
	s := o.Size
	img := image.NewRGBA(image.Rect(0, 0, s, s))
	for i := range img.Pix {
		if i%4 == 3 {
			img.Pix[i] = 255
		} else {
			img.Pix[i] = uint8(rng.IntN(256))
		}
	}
	var boxes []yololabel.Box
	n := o.MinObj + rng.IntN(o.MaxObj-o.MinObj+1)
	lo, hi := int(o.MinSide*float64(s)), int(o.MaxSide*float64(s))
	for range n {
		c := rng.IntN(Classes)
		w, h := lo+rng.IntN(hi-lo+1), lo+rng.IntN(hi-lo+1)
		x, y := rng.IntN(s-w+1), rng.IntN(s-h+1)
		col := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		draw(img, c, x, y, w, h, col)
		boxes = append(boxes, yololabel.FromRect(c, float64(x), float64(y), float64(x+w), float64(y+h), s, s))
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	return buf.Bytes(), boxes
}

// draw fills shape c in the box (x, y, w, h).
func draw(img *image.RGBA, c, x, y, w, h int, col color.RGBA) {
	for py := y; py < y+h; py++ {
		for px := x; px < x+w; px++ {
			fx, fy := (float64(px-x)+0.5)/float64(w), (float64(py-y)+0.5)/float64(h) // 0..1 in the box
			in := true
			switch c {
			case 1: // ellipse
				dx, dy := fx-0.5, fy-0.5
				in = dx*dx+dy*dy <= 0.25
			case 2: // triangle: apex at the top centre, base at the bottom
				in = fx >= 0.5-fy/2 && fx <= 0.5+fy/2
			}
			if in {
				img.SetRGBA(px, py, col)
			}
		}
	}
}

// WriteFolder writes n images with their labels into dir/images and
// dir/labels (named <prefix>0000.jpg ...), drawn from seed.
func WriteFolder(dir, prefix string, n int, seed uint64, o Options) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for _, d := range []string{"images", "labels"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for i := range n {
		jpg, boxes := Image(rng, o)
		name := fmt.Sprintf("%s%04d", prefix, i)
		if err := os.WriteFile(filepath.Join(dir, "images", name+".jpg"), jpg, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "labels", name+".txt"), yololabel.Format(boxes), 0o644); err != nil {
			return err
		}
	}
	return nil
}
