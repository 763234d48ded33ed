package imaging

import (
	"encoding/binary"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/imageheader"
	"github.com/azaion/edge/sdk/imageheader/imagetest"
	"github.com/azaion/edge/sdk/yolo"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPreprocessMatchesUltralytics(t *testing.T) {
	want := imagingtest.ReadF32(t, testenv.Model(t, "images/bus.jpg.640.f32"))
	got := make([]float32, 3*640*640)
	d, err := Preprocess(readTestImage(t, "bus.jpg"), got, 640, 640, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Width != 810 || d.Height != 1080 || d.Letterbox.PadX != 80 || d.Letterbox.PadY != 0 {
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
	// Same libjpeg-turbo, same resize: identical up to libjpeg's IDCT differences.
	if maxDiff > 3.0/255 || mean > 0.1/255 {
		t.Errorf("preprocessing differs from Ultralytics': max %.4f mean %.6f", maxDiff, mean)
	}
	// Padding columns are 114/255 in every plane.
	for c := range 3 {
		if v := got[c*640*640+5*640+3]; v != PadValue {
			t.Errorf("plane %d padding = %v, want %v", c, v, PadValue)
		}
	}
}

// TestCheckSizeCodes: the size checks of sdk/imageheader come out as the
// backend contract's per-image error codes.
func TestCheckSizeCodes(t *testing.T) {
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
		ie := ImageError(imageheader.CheckSize(imageheader.PNG, tc.w, tc.h, tc.max))
		got := ""
		if ie != nil {
			got = ie.Code
		}
		if got != tc.code {
			t.Errorf("%dx%d max %d: %q, want %q", tc.w, tc.h, tc.max, got, tc.code)
		}
	}
	if ie := ImageError(ErrUndecodable); ie.Code != backend.ImageUndecodable {
		t.Errorf("ErrUndecodable: %+v", ie)
	}
}

func TestChooseScale(t *testing.T) {
	jpeg := func(w, h, o int) imageheader.Header {
		return imageheader.Header{Format: imageheader.JPEG, Width: w, Height: h, Orientation: o}
	}
	tests := []struct {
		name string
		h    imageheader.Header
		w, s int // model input side, want scale
	}{
		{"bus.jpg: 1/2 would be 405x540 < 480x640", jpeg(810, 1080, 1), 640, 8},
		{"bus.jpg for a 1280 model", jpeg(810, 1080, 1), 1280, 8},
		{"4K: 1/4 is 960x540 >= 640x360", jpeg(3840, 2160, 1), 640, 2},
		{"4K rotated by EXIF", jpeg(3840, 2160, 6), 640, 2},
		{"1080p: 1/4 would be 480x270", jpeg(1920, 1080, 1), 640, 4},
		{"8K", jpeg(7680, 4320, 1), 640, 1},
		{"8K for a 1280 model", jpeg(7680, 4320, 1), 1280, 2},
		{"exactly twice the input", jpeg(1280, 1280, 1), 640, 4},
		{"a pixel short of twice", jpeg(1277, 1277, 1), 640, 8},
		{"small", jpeg(320, 240, 1), 640, 8},
	}
	for _, tc := range tests {
		if got := ChooseScale(tc.h, tc.w, tc.w); got != tc.s {
			t.Errorf("%s: scale %d/8, want %d/8", tc.name, got, tc.s)
		}
		// Whatever it picks covers the letterbox.
		ow, oh := tc.h.OrientedSize()
		lb := yolo.NewLetterbox(ow, oh, tc.w, tc.w)
		if s := ChooseScale(tc.h, tc.w, tc.w); s < FullScale && (scaled(ow, s) < lb.NewW || scaled(oh, s) < lb.NewH) {
			t.Errorf("%s: %d/8 gives %dx%d, under the letterbox's %dx%d", tc.name, s, scaled(ow, s), scaled(oh, s), lb.NewW, lb.NewH)
		}
	}
}

// meanAbsDiff compares two 8-bit images of the same size.
func meanAbsDiff(t *testing.T, a, b gocv.Mat) float64 {
	t.Helper()
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() || a.Type() != b.Type() {
		t.Fatalf("sizes differ: %dx%d %v vs %dx%d %v", a.Cols(), a.Rows(), a.Type(), b.Cols(), b.Rows(), b.Type())
	}
	pa, _ := a.DataPtrUint8()
	pb, _ := b.DataPtrUint8()
	var sum float64
	for i := range pa {
		sum += math.Abs(float64(pa[i]) - float64(pb[i]))
	}
	return sum / float64(len(pa))
}

// TestDecodeMatchesOpenCV: at full scale TurboJPEG decodes exactly what
// OpenCV decodes (the same libjpeg-turbo, the same EXIF orientation), for
// every orientation and for progressive and grey JPEGs; scaled decodes keep
// the original size and the orientation.
func TestDecodeMatchesOpenCV(t *testing.T) {
	bus := readTestImage(t, "bus.jpg")
	m, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(m, &gray, gocv.ColorBGRToGray)
	cases := map[string][]byte{
		"progressive": encode(t, m, gocv.IMWriteJpegProgressive, 1),
		"grey":        encode(t, gray),
	}
	for o := 1; o <= 8; o++ {
		cases["orientation "+string(rune('0'+o))] = imagetest.WithOrientation(bus, o, binary.LittleEndian)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := gocv.IMDecode(data, gocv.IMReadColor)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			got, err := Decode(data, 640, 640, Options{Scale: FullScale})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Width != want.Cols() || got.Height != want.Rows() {
				t.Fatalf("size %dx%d, OpenCV %dx%d", got.Width, got.Height, want.Cols(), want.Rows())
			}
			if d := meanAbsDiff(t, got.Mat, want); d != 0 {
				t.Errorf("full-scale decode differs from OpenCV's by %.3f levels on average", d)
			}
			// At 1/2 the pixels are OpenCV's downscaled, in the same orientation.
			half, err := Decode(data, 640, 640, Options{Scale: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer half.Close()
			if half.Width != got.Width || half.Height != got.Height || half.Scale != 4 ||
				half.Mat.Cols() != (got.Width+1)/2 || half.Mat.Rows() != (got.Height+1)/2 {
				t.Fatalf("1/2 decode: %dx%d scale %d Mat %dx%d", half.Width, half.Height, half.Scale, half.Mat.Cols(), half.Mat.Rows())
			}
			small := gocv.NewMat()
			defer small.Close()
			gocv.Resize(want, &small, image.Pt(half.Mat.Cols(), half.Mat.Rows()), 0, 0, gocv.InterpolationArea)
			if d := meanAbsDiff(t, half.Mat, small); d > 3 {
				t.Errorf("1/2 decode differs from OpenCV's area downscale by %.2f levels on average", d)
			}
			// A lone image (two decode threads, the letterbox beside the
			// decode where it applies) gets the tensor of the usual path.
			a, b := make([]float32, 3*640*640), make([]float32, 3*640*640)
			pa, err := Preprocess(data, a, 640, 640, false, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pb, err := Preprocess(data, b, 640, 640, false, Options{Parallel: true})
			if err != nil || pb.Letterbox != pa.Letterbox {
				t.Fatalf("lone image: letterbox %+v, %v; want %+v", pb.Letterbox, err, pa.Letterbox)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("lone image: value %d is %v, %v on the usual path", i, b[i], a[i])
				}
			}
		})
	}
}

func TestDecodeFormats(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format imageheader.Format
		w, h   int
	}{
		{"12x10.bmp", imageheader.BMP, 12, 10},
		{"12x10.webp", imageheader.WebP, 12, 10},
		{"cmyk.jpg", imageheader.JPEG, 64, 48},
	} {
		im, err := Decode(testdata(t, tc.file), 640, 640, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if im.Format != tc.format || im.Width != tc.w || im.Height != tc.h || im.Mat.Cols() != tc.w {
			t.Errorf("%s: %s %dx%d Mat %dx%d", tc.file, im.Format, im.Width, im.Height, im.Mat.Cols(), im.Mat.Rows())
		}
		im.Close()
	}
	// A CMYK JPEG goes through OpenCV (libjpeg-turbo does not convert CMYK
	// to BGR), at a reduced scale when that covers the letterbox.
	cmyk := testdata(t, "cmyk.jpg")
	want, err := gocv.IMDecode(cmyk, gocv.IMReadReducedColor4)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	im, err := Decode(cmyk, 16, 16, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Width != 64 || im.Height != 48 || im.Scale != 2 || im.Mat.Cols() != 16 || im.Mat.Rows() != 12 {
		t.Fatalf("CMYK for a 16x16 letterbox: %dx%d scale %d Mat %dx%d, want 64x48 at 1/4 (16x12)", im.Width, im.Height, im.Scale, im.Mat.Cols(), im.Mat.Rows())
	}
	if d := meanAbsDiff(t, im.Mat, want); d != 0 {
		t.Errorf("CMYK decode differs from OpenCV's by %.3f levels", d)
	}
}

// TestDecodeBadInput: every bad image is refused with the right error, the
// oversized ones before anything is decoded, and nothing crashes.
func TestDecodeBadInput(t *testing.T) {
	bus := readTestImage(t, "bus.jpg")
	corrupt := append([]byte(nil), bus...)
	for i := len(corrupt) / 2; i < len(corrupt)/2+2000; i++ {
		corrupt[i] = 0x55
	}
	tests := []struct {
		name string
		data []byte
		max  int64
		want error // nil: decoded (a corrupt scan may decode with artefacts)
		code string
	}{
		{"empty", nil, 0, imageheader.ErrNotImage, backend.ImageUndecodable},
		{"text", []byte("hello, this is not an image\n"), 0, imageheader.ErrNotImage, backend.ImageUndecodable},
		{"truncated jpeg", bus[:len(bus)/2], 0, imageheader.ErrUnreadable, backend.ImageUndecodable},
		{"jpeg header only", bus[:600], 0, imageheader.ErrUnreadable, backend.ImageUndecodable},
		{"lossless jpeg", imagetest.WithSOF(bus, 0xC3), 0, imageheader.ErrUnreadable, backend.ImageUndecodable},
		{"claims progressive, is baseline", imagetest.WithSOF(bus, 0xC2), 0, ErrUndecodable, backend.ImageUndecodable},
		{"1x1 png", testdata(t, "1x1.png"), 0, imageheader.ErrTooSmall, backend.ImageTooSmall},
		{"1x1 jpeg", testdata(t, "1x1.jpg"), 0, imageheader.ErrTooSmall, backend.ImageTooSmall},
		{"claims 30000x30000", imagetest.Claiming(bus, 30000, 30000), 0, imageheader.ErrTooLarge, backend.ImageTooLarge},
		{"over the caller's limit", bus, 810*1080 - 1, imageheader.ErrTooLarge, backend.ImageTooLarge},
		{"corrupt scan data", corrupt, 0, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, 3*64*64)
			p, err := Preprocess(tc.data, dst, 64, 64, false, Options{MaxPixels: tc.max})
			if tc.want == nil {
				t.Logf("%s: %v (decoded %dx%d)", tc.name, err, p.Width, p.Height)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			ie := ImageError(err)
			if ie.Code != tc.code || ie.Message == "" {
				t.Errorf("image error %+v, want code %s", ie, tc.code)
			}
			t.Log(err)
		})
	}
	if _, err := Decode(bus, 640, 640, Options{Scale: FullScale}); err != nil {
		t.Fatal(err)
	}
}

// TestLetterboxMat: a frame decoded elsewhere (video) letterboxes exactly as
// the same image decoded here at full scale.
func TestLetterboxMat(t *testing.T) {
	bus := readTestImage(t, "bus.jpg")
	frame, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer frame.Close()
	a, b := make([]float32, 3*320*256), make([]float32, 3*320*256)
	lbA, err := LetterboxMat(a, frame, 320, 256, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Preprocess(bus, b, 320, 256, true, Options{Scale: FullScale})
	if err != nil {
		t.Fatal(err)
	}
	if lbA != p.Letterbox || lbA.NewW != 192 || lbA.NewH != 256 || lbA.PadX != 64 {
		t.Fatalf("letterbox %+v vs %+v", lbA, p.Letterbox)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("value %d: %v vs %v", i, a[i], b[i])
		}
	}
	if _, err := LetterboxMat(a[:10], frame, 320, 256, true); err == nil || !strings.Contains(err.Error(), "tensor") {
		t.Errorf("short tensor: %v", err)
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := LetterboxMat(a, empty, 320, 256, true); !errors.Is(err, ErrUndecodable) {
		t.Errorf("empty frame: %v", err)
	}
}
