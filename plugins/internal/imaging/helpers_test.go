package imaging

import (
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/testenv"
)

// readTestImage reads a shared test image.
func readTestImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Model(t, filepath.Join("images", name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encode encodes m as a JPEG (OpenCV's default quality 95) with extra
// imwrite parameters.
func encode(t testing.TB, m gocv.Mat, params ...int) []byte {
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

var (
	uhdOnce sync.Once
	uhdJPEG []byte
)

// bus4K is bus.jpg stretched to 3840x2160 (INTER_CUBIC) and encoded as a
// JPEG: the 4K frame of the accuracy tests and benchmarks.
func bus4K(t testing.TB) []byte {
	t.Helper()
	bus := readTestImage(t, "bus.jpg")
	uhdOnce.Do(func() {
		m, err := gocv.IMDecode(bus, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		big := gocv.NewMat()
		defer big.Close()
		gocv.Resize(m, &big, image.Pt(3840, 2160), 0, 0, gocv.InterpolationCubic)
		uhdJPEG = encode(t, big)
	})
	if uhdJPEG == nil {
		t.Fatal("no 4K image")
	}
	return uhdJPEG
}
