package trainer

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"

	"gocv.io/x/gocv"

	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yololabel"
)

// only returns params with every transform off except those set by f.
func only(f func(*sdk.AugmentParams)) sdk.AugmentParams {
	p := sdk.DefaultAugmentParams()
	p.FlipP, p.RotateP, p.ScaleP, p.PerspectiveP, p.BrightnessP, p.HSVP, p.BlurP, p.NoiseP = 0, 0, 0, 0, 0, 0, 0, 0
	p.MinVisible = 0
	f(&p)
	return p
}

// pixelBox returns the bounding box (continuous coordinates) of the pixels
// whose channel ch is bright and the other two dark.
func pixelBox(t *testing.T, img gocv.Mat, ch int) (x1, y1, x2, y2 float64, ok bool) {
	t.Helper()
	data, err := img.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	w, h := img.Cols(), img.Rows()
	minX, minY, maxX, maxY := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := data[(y*w+x)*3 : (y*w+x)*3+3]
			if p[ch] > 100 && p[(ch+1)%3] < 60 && p[(ch+2)%3] < 60 {
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	if maxX < 0 {
		return 0, 0, 0, 0, false
	}
	return float64(minX), float64(minY), float64(maxX + 1), float64(maxY + 1), true
}

// TestBoxTransformsMatchPixels draws filled rectangles of known colours,
// applies each geometric transform (and all together) and checks that the
// rectangle found in the output pixels and the transformed label agree
// within 2 px.
func TestBoxTransformsMatchPixels(t *testing.T) {
	const w, h = 640, 480
	rects := []image.Rectangle{image.Rect(100, 80, 220, 160), image.Rect(380, 120, 470, 300), image.Rect(200, 300, 330, 390)}
	cols := []color.RGBA{{0, 0, 255, 0}, {0, 255, 0, 0}, {255, 0, 0, 0}} // gocv draws BGR: blue, green, red channel
	chans := []int{0, 1, 2}
	src := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer src.Close()
	var boxes []yololabel.Box
	for i, r := range rects {
		gocv.Rectangle(&src, image.Rect(r.Min.X, r.Min.Y, r.Max.X-1, r.Max.Y-1), cols[i], -1)
		boxes = append(boxes, yololabel.FromRect(i, float64(r.Min.X), float64(r.Min.Y), float64(r.Max.X), float64(r.Max.Y), w, h))
	}
	// Sanity: the untouched image gives the drawn rectangles.
	for i, ch := range chans {
		x1, y1, x2, y2, ok := pixelBox(t, src, ch)
		if !ok || x1 != float64(rects[i].Min.X) || y2 != float64(rects[i].Max.Y) {
			t.Fatalf("drawn rectangle %d found at %v %v %v %v", i, x1, y1, x2, y2)
		}
	}
	cases := map[string]sdk.AugmentParams{
		"flip":        only(func(p *sdk.AugmentParams) { p.FlipP = 1 }),
		"rotate":      only(func(p *sdk.AugmentParams) { p.RotateP = 1; p.RotateDeg = 25 }),
		"scale":       only(func(p *sdk.AugmentParams) { p.ScaleP = 1; p.Scale = 0.3; p.Translate = 0.05 }),
		"perspective": only(func(p *sdk.AugmentParams) { p.PerspectiveP = 1; p.Perspective = 0.08 }),
		"all": only(func(p *sdk.AugmentParams) {
			p.FlipP, p.RotateP, p.ScaleP, p.PerspectiveP = 1, 1, 1, 1
			p.Scale, p.Translate = 0.1, 0.03
		}),
	}
	for name, p := range cases {
		for k := 1; k <= 4; k++ {
			t.Run(fmt.Sprintf("%s/%d", name, k), func(t *testing.T) {
				pl := makePlan(p, "synthetic", k, w, h)
				if !pl.hasGeo {
					t.Fatalf("plan %v has no geometry", pl.ops)
				}
				out, err := applyPlan(src, pl, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer out.Close()
				got, _ := transformBoxes(boxes, pl.geo, w, h, 0)
				byClass := map[int]yololabel.Box{}
				for _, b := range got {
					byClass[b.Class] = b
				}
				for i, ch := range chans {
					px1, py1, px2, py2, ok := pixelBox(t, out, ch)
					b, kept := byClass[i]
					if !ok || !kept {
						t.Fatalf("rect %d: in pixels %v, in labels %v (ops %v)", i, ok, kept, pl.ops)
					}
					lx1, ly1, lx2, ly2 := b.Rect(w, h)
					d := math.Max(math.Max(math.Abs(px1-lx1), math.Abs(py1-ly1)), math.Max(math.Abs(px2-lx2), math.Abs(py2-ly2)))
					if d > 2 {
						t.Errorf("rect %d (ops %v): pixels (%.1f,%.1f)-(%.1f,%.1f), label (%.1f,%.1f)-(%.1f,%.1f): off by %.2f px",
							i, pl.ops, px1, py1, px2, py2, lx1, ly1, lx2, ly2, d)
					}
				}
			})
		}
	}
}

func TestTransformBoxesClipAndDrop(t *testing.T) {
	const w, h = 100, 100
	shift := translate(-60, 0) // moves everything 60 px left
	boxes := []yololabel.Box{
		yololabel.FromRect(1, 50, 10, 90, 30, w, h), // -> -10..30: 75% visible, clipped to 0..30
		yololabel.FromRect(2, 10, 10, 70, 30, w, h), // -> -50..10: 1/6 visible, dropped at 0.3
		yololabel.FromRect(3, 0, 50, 40, 60, w, h),  // -> fully outside, dropped
	}
	got, dropped := transformBoxes(boxes, shift, w, h, 0.3)
	if dropped != 2 || len(got) != 1 || got[0].Class != 1 {
		t.Fatalf("got %v, dropped %d", got, dropped)
	}
	x1, _, x2, _ := got[0].Rect(w, h)
	if math.Abs(x1) > 1e-9 || math.Abs(x2-30) > 1e-9 {
		t.Fatalf("clipped box %v..%v, want 0..30", x1, x2)
	}
	if got, _ := transformBoxes(boxes[1:2], shift, w, h, 0.1); len(got) != 1 {
		t.Fatalf("min_visible 0.1 keeps the 1/6 visible box: %v", got)
	}
}

func TestPerspectiveFrom(t *testing.T) {
	src := [4][2]float64{{0, 0}, {100, 0}, {100, 50}, {0, 50}}
	dst := [4][2]float64{{3, -2}, {98, 4}, {105, 47}, {-4, 52}}
	m := perspectiveFrom(src, dst)
	for i := range src {
		x, y := m.apply(src[i][0], src[i][1])
		if math.Abs(x-dst[i][0]) > 1e-9 || math.Abs(y-dst[i][1]) > 1e-9 {
			t.Fatalf("corner %d -> %v,%v want %v", i, x, y, dst[i])
		}
	}
}

func TestColourTransformsKeepBoxes(t *testing.T) {
	p := only(func(p *sdk.AugmentParams) { p.BrightnessP, p.HSVP, p.BlurP, p.NoiseP = 1, 1, 1, 1 })
	pl := makePlan(p, "x", 1, 64, 48)
	if pl.hasGeo || len(pl.ops) != 4 {
		t.Fatalf("plan %v", pl.ops)
	}
	src := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 150, 0), 48, 64, gocv.MatTypeCV8UC3)
	defer src.Close()
	nf := newNoiseFields(1, 8)
	defer nf.close()
	a, err := applyPlan(src, pl, nf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := applyPlan(src, pl, nf)
	defer b.Close()
	da, _ := a.DataPtrUint8()
	db, _ := b.DataPtrUint8()
	if string(da) != string(db) {
		t.Fatal("the same plan gave different pixels (noise must be seeded)")
	}
	ds, _ := src.DataPtrUint8()
	if string(da) == string(ds) {
		t.Fatal("colour transforms changed nothing")
	}
}

func TestPlanDeterministicAndNeverEmpty(t *testing.T) {
	p := sdk.DefaultAugmentParams()
	p.FlipP, p.RotateP, p.ScaleP, p.PerspectiveP, p.BrightnessP, p.HSVP, p.BlurP, p.NoiseP = 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1
	for k := 1; k <= 50; k++ {
		a, b := makePlan(p, "img", k, 100, 100), makePlan(p, "img", k, 100, 100)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("variant %d differs between runs", k)
		}
		if len(a.ops) == 0 {
			t.Fatalf("variant %d has no transform", k)
		}
	}
	p2 := p
	p2.Seed = 2
	if fmt.Sprint(makePlan(p, "img", 1, 100, 100)) == fmt.Sprint(makePlan(p2, "img", 1, 100, 100)) &&
		fmt.Sprint(makePlan(p, "img", 2, 100, 100)) == fmt.Sprint(makePlan(p2, "img", 2, 100, 100)) {
		t.Fatal("another seed gives the same plans")
	}
}
