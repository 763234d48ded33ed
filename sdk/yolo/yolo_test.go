package yolo

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestNewLetterbox(t *testing.T) {
	tests := []struct {
		name                   string
		srcW, srcH, dstW, dstH int
		want                   Letterbox
	}{
		{"bus portrait", 810, 1080, 640, 640, Letterbox{SrcW: 810, SrcH: 1080, DstW: 640, DstH: 640, NewW: 480, NewH: 640, Scale: 640.0 / 1080, PadX: 80, PadY: 0}},
		{"bus at 1280", 810, 1080, 1280, 1280, Letterbox{SrcW: 810, SrcH: 1080, DstW: 1280, DstH: 1280, NewW: 960, NewH: 1280, Scale: 1280.0 / 1080, PadX: 160, PadY: 0}},
		{"landscape", 640, 480, 640, 640, Letterbox{SrcW: 640, SrcH: 480, DstW: 640, DstH: 640, NewW: 640, NewH: 480, Scale: 1, PadX: 0, PadY: 80}},
		{"odd padding splits -0.1/+0.1", 100, 47, 64, 64, Letterbox{SrcW: 100, SrcH: 47, DstW: 64, DstH: 64, NewW: 64, NewH: 30, Scale: 0.64, PadX: 0, PadY: 17}},
		{"upscale small", 32, 16, 640, 640, Letterbox{SrcW: 32, SrcH: 16, DstW: 640, DstH: 640, NewW: 640, NewH: 320, Scale: 20, PadX: 0, PadY: 160}},
		{"square", 1000, 1000, 640, 640, Letterbox{SrcW: 1000, SrcH: 1000, DstW: 640, DstH: 640, NewW: 640, NewH: 640, Scale: 0.64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewLetterbox(tc.srcW, tc.srcH, tc.dstW, tc.dstH)
			if math.Abs(got.Scale-tc.want.Scale) > 1e-9 {
				t.Errorf("scale = %v, want %v", got.Scale, tc.want.Scale)
			}
			got.Scale = tc.want.Scale
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.PadX+got.NewW+got.PadRight() != tc.dstW || got.PadY+got.NewH+got.PadBottom() != tc.dstH {
				t.Errorf("padding does not fill the canvas: %+v", got)
			}
		})
	}
}

func TestLetterboxOddPaddingMatchesUltralytics(t *testing.T) {
	// 100x47 -> 64: dh = 34/2 = 17 rows... use one with an odd total: 100x45 -> 64: new h = round(28.8) = 29, dh = 35/2 = 17.5
	l := NewLetterbox(100, 45, 64, 64)
	if l.NewH != 29 || l.PadY != 17 || l.PadBottom() != 18 {
		t.Fatalf("got %+v (bottom %d), want new h 29, top 17, bottom 18", l, l.PadBottom())
	}
}

func TestLetterboxInverse(t *testing.T) {
	l := NewLetterbox(810, 1080, 640, 640)
	forward := func(b Box) Box {
		s := float32(l.Scale)
		return Box{X1: b.X1*s + float32(l.PadX), Y1: b.Y1*s + float32(l.PadY), X2: b.X2*s + float32(l.PadX), Y2: b.Y2*s + float32(l.PadY)}
	}
	tests := []struct {
		name string
		in   Box // in input pixels
		want Box // in original pixels
	}{
		{"inside round trip", forward(Box{47.3, 399.3, 244.5, 902.1}), Box{47.3, 399.3, 244.5, 902.1}},
		{"clipped left and bottom", Box{X1: 60, Y1: 600, X2: 200, Y2: 700}, Box{X1: 0, Y1: 1012.5, X2: 202.5, Y2: 1080}},
		{"clipped right", Box{X1: 500, Y1: 0, X2: 600, Y2: 10}, Box{X1: 708.75, Y1: 0, X2: 810, Y2: 16.875}},
		{"all in padding", Box{X1: 0, Y1: 0, X2: 70, Y2: 5}, Box{X1: 0, Y1: 0, X2: 0, Y2: 8.4375}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := l.Inverse(tc.in)
			for i, pair := range [][2]float32{{got.X1, tc.want.X1}, {got.Y1, tc.want.Y1}, {got.X2, tc.want.X2}, {got.Y2, tc.want.Y2}} {
				if math.Abs(float64(pair[0]-pair[1])) > 0.01 {
					t.Errorf("coord %d = %v, want %v (box %+v)", i, pair[0], pair[1], got)
				}
			}
		})
	}
	dets := []Detection{{Box: forward(Box{10, 20, 30, 40})}}
	l.Unletterbox(dets)
	if d := dets[0].Box; math.Abs(float64(d.X1-10)) > 0.01 || math.Abs(float64(d.Y2-40)) > 0.01 {
		t.Errorf("Unletterbox = %+v", d)
	}
}

func TestIoU(t *testing.T) {
	tests := []struct {
		name string
		a, b Box
		want float32
	}{
		{"same", Box{0, 0, 10, 10}, Box{0, 0, 10, 10}, 1},
		{"disjoint", Box{0, 0, 10, 10}, Box{20, 20, 30, 30}, 0},
		{"touching", Box{0, 0, 10, 10}, Box{10, 0, 20, 10}, 0},
		{"half", Box{0, 0, 10, 10}, Box{5, 0, 15, 10}, 50.0 / 150},
		{"contained", Box{0, 0, 10, 10}, Box{0, 0, 5, 10}, 0.5},
		{"empty", Box{0, 0, 0, 0}, Box{0, 0, 0, 0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IoU(tc.a, tc.b); math.Abs(float64(got-tc.want)) > 1e-6 {
				t.Errorf("IoU = %v, want %v", got, tc.want)
			}
		})
	}
}

// anchor is one synthetic yolo-raw anchor.
type anchor struct {
	cx, cy, w, h float32
	scores       []float32
}

// rawTensor builds a [4+nc, A] slice from anchors.
func rawTensor(nc int, as []anchor) []float32 {
	n := len(as)
	data := make([]float32, (4+nc)*n)
	for a, x := range as {
		data[a], data[n+a], data[2*n+a], data[3*n+a] = x.cx, x.cy, x.w, x.h
		for c, s := range x.scores {
			data[(4+c)*n+a] = s
		}
	}
	return data
}

func TestDecodeRaw(t *testing.T) {
	// Three classes. Anchors 0 and 1 overlap heavily (IoU 0.8); anchor 2
	// overlaps anchor 0 as much but is another class; anchor 3 is alone;
	// anchor 4 scores below conf.
	as := []anchor{
		{50, 50, 20, 20, []float32{0.9, 0.1, 0.0}},
		{51, 50, 20, 20, []float32{0.8, 0.2, 0.0}},
		{50, 51, 20, 20, []float32{0.1, 0.7, 0.0}},
		{200, 200, 40, 10, []float32{0.0, 0.0, 0.6}},
		{300, 300, 40, 10, []float32{0.0, 0.0, 0.2}},
	}
	data := rawTensor(3, as)
	type want struct {
		class int
		score float32
	}
	tests := []struct {
		name string
		p    Params
		want []want
	}{
		{"defaults: class-aware NMS", Params{}, []want{{0, 0.9}, {1, 0.7}, {2, 0.6}}},
		{"loose IoU keeps overlapping same class", Params{IoU: 0.95}, []want{{0, 0.9}, {0, 0.8}, {1, 0.7}, {2, 0.6}}},
		{"conf is strict", Params{Conf: 0.7}, []want{{0, 0.9}}},
		{"conf low keeps the weak one", Params{Conf: 0.15}, []want{{0, 0.9}, {1, 0.7}, {2, 0.6}, {2, 0.2}}},
		{"max det", Params{MaxDet: 2}, []want{{0, 0.9}, {1, 0.7}}},
		{"classes filter", Params{Classes: []int{1, 2}}, []want{{1, 0.7}, {2, 0.6}}},
		{"classes filter uses the best class", Params{Classes: []int{1}}, []want{{1, 0.7}}},
	}
	var d Decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.DecodeRaw(nil, data, 3, len(as), tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d detections %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if got[i].ClassID != w.class || got[i].Score != w.score {
					t.Errorf("detection %d = class %d score %v, want class %d score %v", i, got[i].ClassID, got[i].Score, w.class, w.score)
				}
			}
		})
	}
	t.Run("box is xyxy", func(t *testing.T) {
		got, _ := d.DecodeRaw(nil, data, 3, len(as), Params{})
		if b := got[0].Box; b != (Box{40, 40, 60, 60}) {
			t.Errorf("box = %+v, want {40 40 60 60}", b)
		}
	})
	t.Run("bad shape", func(t *testing.T) {
		if _, err := d.DecodeRaw(nil, data[:10], 3, len(as), Params{}); err == nil {
			t.Error("short data: want an error")
		}
		if _, err := d.DecodeRaw(nil, data, 0, len(as), Params{}); err == nil {
			t.Error("zero classes: want an error")
		}
	})
}

func TestDecodeNMS(t *testing.T) {
	data := []float32{
		10, 10, 50, 50, 0.9, 0,
		20, 20, 60, 60, 0.3, 2,
		30, 30, 70, 70, 0.95, 5,
		0, 0, 0, 0, 0, 0, // padding
		0, 0, 0, 0, 0, 0,
	}
	tests := []struct {
		name    string
		p       Params
		classes []int
	}{
		{"defaults sorted", Params{}, []int{5, 0, 2}},
		{"conf", Params{Conf: 0.5}, []int{5, 0}},
		{"classes", Params{Classes: []int{0, 2}}, []int{0, 2}},
		{"max det", Params{MaxDet: 1}, []int{5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeNMS(data, 5, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			var classes []int
			for _, d := range got {
				classes = append(classes, d.ClassID)
			}
			if len(classes) != len(tc.classes) {
				t.Fatalf("classes = %v, want %v", classes, tc.classes)
			}
			for i := range classes {
				if classes[i] != tc.classes[i] {
					t.Fatalf("classes = %v, want %v", classes, tc.classes)
				}
			}
		})
	}
	if _, err := DecodeNMS(data, 6, Params{}); err == nil {
		t.Error("short data: want an error")
	}
	got, _ := DecodeNMS(data, 5, Params{})
	if got[1].Box != (Box{10, 10, 50, 50}) {
		t.Errorf("box = %+v", got[1].Box)
	}
}

// syntheticRaw builds an 84x8400 output like YOLO11n's: low scores
// everywhere, with `objects` clusters of high-scoring anchors.
func syntheticRaw(objects int) []float32 {
	const nc, n = 80, 8400
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]float32, (4+nc)*n)
	for a := range n {
		data[a] = r.Float32() * 640
		data[n+a] = r.Float32() * 640
		data[2*n+a] = 10 + r.Float32()*100
		data[3*n+a] = 10 + r.Float32()*100
		for c := range nc {
			data[(4+c)*n+a] = r.Float32() * 0.05
		}
	}
	for o := range objects {
		cx, cy := r.Float32()*600, r.Float32()*600
		for k := range 30 {
			a := r.IntN(n)
			data[a], data[n+a], data[2*n+a], data[3*n+a] = cx+float32(k%3), cy+float32(k%5), 80, 120
			data[(4+o%nc)*n+a] = 0.3 + r.Float32()*0.6
		}
	}
	return data
}

func TestDecodeRawAllocations(t *testing.T) {
	data := syntheticRaw(10)
	var d Decoder
	dst := make([]Detection, 0, 300)
	d.DecodeRaw(dst, data, 80, 8400, Params{})
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := d.DecodeRaw(dst[:0], data, 80, 8400, Params{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("DecodeRaw allocates %v times per call with a warm Decoder, want 0", allocs)
	}
}

func BenchmarkDecodeRaw(b *testing.B) {
	data := syntheticRaw(10)
	var d Decoder
	dst := make([]Detection, 0, 300)
	b.ReportAllocs()
	b.SetBytes(int64(len(data) * 4))
	for b.Loop() {
		dst, _ = d.DecodeRaw(dst[:0], data, 80, 8400, Params{})
	}
}

func BenchmarkDecodeNMS(b *testing.B) {
	data := make([]float32, 300*6)
	for i := range 20 {
		copy(data[i*6:], []float32{10, 10, 50, 50, 0.9 - float32(i)*0.01, float32(i)})
	}
	var d Decoder
	dst := make([]Detection, 0, 300)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = d.DecodeNMS(dst[:0], data, 300, Params{})
	}
}

// TestDecodeRawTiesAndNaN: a tie between classes goes to the lowest class
// (as a strict > scan finds it) and an anchor with a NaN class score is
// never a detection (whatever its other scores).
func TestDecodeRawTiesAndNaN(t *testing.T) {
	const nc, n = 8, 4
	data := make([]float32, (4+nc)*n)
	for a := range n {
		data[a], data[n+a], data[2*n+a], data[3*n+a] = float32(100*a+50), 50, 20, 20
	}
	set := func(a, c int, v float32) { data[(4+c)*n+a] = v }
	set(0, 3, 0.8)
	set(0, 6, 0.8) // tie: class 3
	set(1, 2, 0.9)
	set(1, 5, float32(math.NaN())) // NaN: dropped
	set(2, 7, 0.7)                 // last class
	set(3, 0, 0.6)                 // first class
	var d Decoder
	got, err := d.DecodeRaw(nil, data, nc, n, Params{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[float32]int{50: 3, 250: 7, 350: 0} // box centre x -> class
	if len(got) != len(want) {
		t.Fatalf("got %d detections %+v, want %d", len(got), got, len(want))
	}
	for _, det := range got {
		cx := (det.Box.X1 + det.Box.X2) / 2
		if c, ok := want[cx]; !ok || c != det.ClassID {
			t.Errorf("detection at x %v: class %d, want %d (present %v)", cx, det.ClassID, c, ok)
		}
	}
}

// TestMaxRow: the row maximum DecodeRaw uses (AVX2 on amd64 CPUs that have
// it) gives what Go's max gives, NaN included (a NaN in either operand,
// at every position of a 32-value block and in the tail after the blocks).
func TestMaxRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nan := float32(math.NaN())
	for _, n := range []int{0, 1, 31, 32, 33, 100, 8400} {
		best := make([]float32, n)
		want := make([]float32, n)
		for i := range best {
			best[i] = rng.Float32()*2 - 0.5
		}
		for r := range 6 {
			row := make([]float32, n)
			for i := range row {
				row[i] = rng.Float32()*2 - 0.5
				switch rng.IntN(16) {
				case 0:
					row[i] = nan
				case 1:
					row[i] = float32(math.Inf(1 - 2*(r%2)))
				case 2:
					row[i] = best[i]
				}
			}
			copy(want, best)
			maxRowGo(want, row)
			maxRow(best, row)
			for i := range best {
				if best[i] != want[i] && !(math.IsNaN(float64(best[i])) && math.IsNaN(float64(want[i]))) {
					t.Fatalf("n %d row %d: best[%d] = %v, want %v (row %v)", n, r, i, best[i], want[i], row[i])
				}
			}
		}
		nans := 0
		for _, v := range best {
			if math.IsNaN(float64(v)) {
				nans++
			}
		}
		if n >= 100 && (nans == 0 || nans == n) {
			t.Errorf("n %d: %d NaNs after six rows, want some", n, nans)
		}
	}
}
