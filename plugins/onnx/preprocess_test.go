package onnx

import (
	"encoding/binary"
	"math"
	"os"
	"testing"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/yolo"
)

// readF32 reads a raw little-endian float32 file.
func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
	}
	return out
}

func TestPreprocessMatchesUltralytics(t *testing.T) {
	want := readF32(t, testenv.Model(t, "images/bus.jpg.640.f32"))
	got := make([]float32, 3*640*640)
	d, ie := preprocess(readTestImage(t, "bus.jpg"), got, 640, 640, false, 0)
	if ie != nil {
		t.Fatal(ie)
	}
	if d.width != 810 || d.height != 1080 || d.lb.PadX != 80 || d.lb.PadY != 0 {
		t.Fatalf("decoded %+v", d)
	}
	var maxDiff float64
	var sum float64
	for i := range want {
		diff := math.Abs(float64(got[i] - want[i]))
		maxDiff = max(maxDiff, diff)
		sum += diff
	}
	mean := sum / float64(len(want))
	t.Logf("vs Ultralytics: max |diff| %.5f (%.1f levels), mean %.6f", maxDiff, maxDiff*255, mean)
	// Same OpenCV, same resize: identical up to libjpeg's IDCT differences.
	if maxDiff > 3.0/255 || mean > 0.1/255 {
		t.Errorf("preprocessing differs from Ultralytics': max %.4f mean %.6f", maxDiff, mean)
	}
	// Padding columns are 114/255 in every plane.
	for c := range 3 {
		if v := got[c*640*640+5*640+3]; v != padValue {
			t.Errorf("plane %d padding = %v, want %v", c, v, padValue)
		}
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		w, h int
		max  int64
		code string
	}{
		{2, 2, 0, ""},
		{1, 100, 0, backend.ImageTooSmall},
		{100, 1, 0, backend.ImageTooSmall},
		{0, 0, 0, backend.ImageTooSmall},
		{10000, 10000, 0, ""},
		{10001, 10000, 0, backend.ImageTooLarge},
		{100, 100, 10000, ""},
		{100, 101, 10000, backend.ImageTooLarge},
		{20000, 20000, 1 << 40, backend.ImageTooLarge},
	}
	for _, tc := range tests {
		ie := checkSize(tc.w, tc.h, tc.max, "png")
		got := ""
		if ie != nil {
			got = ie.Code
		}
		if got != tc.code {
			t.Errorf("%dx%d max %d: %q, want %q", tc.w, tc.h, tc.max, got, tc.code)
		}
	}
}

func BenchmarkPreprocess(b *testing.B) {
	img := readTestImage(b, "bus.jpg")
	dst := make([]float32, 3*640*640)
	for b.Loop() {
		if _, ie := preprocess(img, dst, 640, 640, false, 0); ie != nil {
			b.Fatal(ie)
		}
	}
}

func BenchmarkFillPlanes(b *testing.B) {
	lb := yolo.NewLetterbox(810, 1080, 640, 640)
	pix := make([]uint8, lb.NewW*lb.NewH*3)
	dst := make([]float32, 3*640*640)
	for b.Loop() {
		fillPlanes(dst, pix, lb.NewW*3, lb, false)
	}
}
