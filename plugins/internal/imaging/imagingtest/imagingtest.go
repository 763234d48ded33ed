// Package imagingtest makes the test images of the imaging tests and
// benchmarks from the shared bus.jpg: a 4K frame and re-encoded variants. It
// is imported only by tests and benchmarks of plugins.
package imagingtest

import (
	"encoding/binary"
	"image"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/testenv"
)

// ReadF32 reads a raw little-endian float32 file (such as the shared
// bus.jpg.640.f32 tensor).
func ReadF32(t testing.TB, path string) []float32 {
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

// Bus reads the shared bus.jpg (810x1080).
func Bus(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Model(t, filepath.Join("images", "bus.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Encode encodes m as a JPEG with OpenCV (quality 95 unless params say
// otherwise; params are imwrite pairs such as gocv.IMWriteJpegProgressive, 1).
func Encode(t testing.TB, m gocv.Mat, params ...int) []byte {
	t.Helper()
	var (
		buf *gocv.NativeByteBuffer
		err error
	)
	if len(params) == 0 { // gocv 0.31 indexes params[0]
		buf, err = gocv.IMEncode(gocv.JPEGFileExt, m)
	} else {
		buf, err = gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, params)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// upscaled caches the upscaled images by size.
var upscaled sync.Map // [2]int -> []byte

// Upscale returns bus.jpg resized to w x h with INTER_CUBIC and encoded at
// OpenCV's default JPEG quality (95), made once per test process.
func Upscale(t testing.TB, w, h int) []byte {
	t.Helper()
	if b, ok := upscaled.Load([2]int{w, h}); ok {
		return b.([]byte)
	}
	m, err := gocv.IMDecode(Bus(t), gocv.IMReadColor)
	if err != nil || m.Empty() {
		t.Fatalf("imagingtest: decode bus.jpg: %v", err)
	}
	defer m.Close()
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(m, &big, image.Pt(w, h), 0, 0, gocv.InterpolationCubic)
	b := Encode(t, big)
	upscaled.Store([2]int{w, h}, b)
	return b
}

// Bus4K is bus.jpg stretched to a 3840x2160 frame (Upscale): the 4K input
// of the benchmarks (bench/inference.sh makes the same file with Python's
// cv2). Stretched 4.7x across and 2x down, it is no good for accuracy
// checks (the bus itself scores under 0.5): see BusPortrait4K.
func Bus4K(t testing.TB) []byte { return Upscale(t, 3840, 2160) }

// BusPortrait4K is bus.jpg upscaled 3.56x to 2880x3840, keeping its aspect
// ratio (Upscale): the 4K input of the accuracy tests.
func BusPortrait4K(t testing.TB) []byte { return Upscale(t, 2880, 3840) }
