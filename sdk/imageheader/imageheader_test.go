package imageheader_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/imageheader"
	"github.com/azaion/edge/sdk/imageheader/imagetest"
)

func pngImage(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jpegImage(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bmpImage(w, h int32) []byte {
	b := make([]byte, 54)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	return b
}

func webpVP8X(w, h int) []byte {
	b := make([]byte, 30)
	copy(b, "RIFF")
	copy(b[8:], "WEBPVP8X")
	c := b[12:]
	c[12], c[13], c[14] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
	c[15], c[16], c[17] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
	return b
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bus(t testing.TB) []byte {
	return readFile(t, testenv.Model(t, filepath.Join("images", "bus.jpg")))
}

func TestRead(t *testing.T) {
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, image.NewPaletted(image.Rect(0, 0, 7, 5), []color.Color{color.Black}), nil); err != nil {
		t.Fatal(err)
	}
	bus := bus(t)
	full := pngImage(t, 40, 30)
	tests := []struct {
		name   string
		in     []byte
		format imageheader.Format
		w, h   int
		err    string
		kind   error
	}{
		{"jpeg", bus, "jpeg", 810, 1080, "", nil},
		{"png", full, "png", 40, 30, "", nil},
		{"truncated png", full[:len(full)-20], "", 0, 0, "truncated PNG", imageheader.ErrUnreadable},
		{"gif is not supported (OpenCV 4.6 cannot decode it)", gifBuf.Bytes(), "", 0, 0, "not a JPEG, PNG, BMP or WebP", imageheader.ErrNotImage},
		{"real bmp", readFile(t, "testdata/12x10.bmp"), "bmp", 12, 10, "", nil},
		{"real webp", readFile(t, "testdata/12x10.webp"), "webp", 12, 10, "", nil},
		{"bmp", bmpImage(640, -480), "bmp", 640, 480, "", nil},
		{"bmp zero width", bmpImage(0, 480), "", 0, 0, "width", imageheader.ErrUnreadable},
		{"short bmp", []byte("BM and a bit"), "", 0, 0, "truncated BMP", imageheader.ErrUnreadable},
		{"webp vp8x huge", webpVP8X(30000, 20000), "webp", 30000, 20000, "", nil},
		{"truncated jpeg", bus[:len(bus)-1000], "", 0, 0, "truncated JPEG", imageheader.ErrUnreadable},
		{"jpeg without scan", bus[:2000], "", 0, 0, "JPEG", imageheader.ErrUnreadable},
		{"jpeg magic then junk", []byte("\xFF\xD8\xFF\xE0 not really"), "", 0, 0, "truncated JPEG", imageheader.ErrUnreadable},
		{"lossless jpeg", imagetest.WithSOF(bus, 0xC3), "", 0, 0, "lossless", imageheader.ErrUnreadable},
		{"12-bit jpeg", imagetest.WithPrecision(bus, 12), "", 0, 0, "precision", imageheader.ErrUnreadable},
		{"empty", nil, "", 0, 0, "empty", imageheader.ErrNotImage},
		{"text", []byte("{\"json\": true}"), "", 0, 0, "not a JPEG", imageheader.ErrNotImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := imageheader.Read(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, tc.kind) {
					t.Errorf("err = %v, want one mentioning %q that is %v", err, tc.err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Format != tc.format || h.Width != tc.w || h.Height != tc.h {
				t.Errorf("got %+v, want %s %dx%d", h, tc.format, tc.w, tc.h)
			}
		})
	}
}

func TestJPEGLayout(t *testing.T) {
	bus := bus(t)
	h, err := imageheader.Read(bus)
	if err != nil {
		t.Fatal(err)
	}
	if h.Components != 3 || h.Progressive || h.Orientation != 1 {
		t.Errorf("bus.jpg: %+v, want 3 components, baseline, orientation 1", h)
	}
	gray := image.NewGray(image.Rect(0, 0, 9, 7))
	if h, err := imageheader.Read(jpegImage(t, gray)); err != nil || h.Components != 1 {
		t.Errorf("grey JPEG: %+v %v, want 1 component", h, err)
	}
	if h, err := imageheader.Read(imagetest.WithSOF(bus, 0xC2)); err != nil || !h.Progressive {
		t.Errorf("SOF2: %+v %v, want progressive", h, err)
	}
	for o := 1; o <= 8; o++ {
		for _, order := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			h, err := imageheader.Read(imagetest.WithOrientation(bus, o, order))
			if err != nil {
				t.Fatal(err)
			}
			w, ht := h.OrientedSize()
			want := [2]int{810, 1080}
			if o >= 5 {
				want = [2]int{1080, 810}
			}
			if h.Orientation != o || h.Width != 810 || [2]int{w, ht} != want {
				t.Errorf("orientation %d (%v): %+v oriented %dx%d, want %v", o, order, h, w, ht, want)
			}
		}
	}
	// Out of range values and broken EXIF read as 1.
	if h, err := imageheader.Read(imagetest.WithOrientation(bus, 9, binary.BigEndian)); err != nil || h.Orientation != 1 {
		t.Errorf("orientation 9: %+v %v, want 1", h, err)
	}
	broken := imagetest.WithOrientation(bus, 6, binary.BigEndian)
	copy(broken[6:], "Exif\x00\x00XX") // not a TIFF byte order
	if h, err := imageheader.Read(broken); err != nil || h.Orientation != 1 {
		t.Errorf("broken EXIF: %+v %v, want orientation 1", h, err)
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		w, h int
		max  int64
		want error
	}{
		{2, 2, 0, nil},
		{1, 100, 0, imageheader.ErrTooSmall},
		{100, 1, 0, imageheader.ErrTooSmall},
		{0, 0, 0, imageheader.ErrTooSmall},
		{10000, 10000, 0, nil},
		{10001, 10000, 0, imageheader.ErrTooLarge},
		{100, 100, 10000, nil},
		{100, 101, 10000, imageheader.ErrTooLarge},
		{20000, 20000, 1 << 40, imageheader.ErrTooLarge},
	}
	for _, tc := range tests {
		err := imageheader.CheckSize(imageheader.PNG, tc.w, tc.h, tc.max)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%dx%d max %d: %v, want %v", tc.w, tc.h, tc.max, err, tc.want)
		}
	}
	err := imageheader.CheckSize(imageheader.JPEG, 30000, 30000, 0)
	if !strings.Contains(err.Error(), "900000000 pixels") || !strings.Contains(err.Error(), "jpeg") {
		t.Errorf("message %q: want the format and the pixel count", err)
	}
}

// FuzzRead checks that no input makes Read panic and that what it accepts
// is self-consistent. `go test` runs the seeds; `go test -fuzz FuzzRead`
// explores further.
func FuzzRead(f *testing.F) {
	bus := bus(f)
	for _, s := range [][]byte{bus[:4096], imagetest.WithOrientation(bus[:3000], 6, binary.LittleEndian), pngImage(f, 3, 3),
		bmpImage(4, 4), webpVP8X(5, 5), []byte("RIFF\x00\x00\x00\x00WEBPVP8L"), {0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := imageheader.Read(b)
		if err != nil {
			if !errors.Is(err, imageheader.ErrNotImage) && !errors.Is(err, imageheader.ErrUnreadable) {
				t.Fatalf("error %v is neither ErrNotImage nor ErrUnreadable", err)
			}
			return
		}
		if h.Format != imageheader.Sniff(b) || h.Width < 0 || h.Height < 0 || h.Orientation < 1 || h.Orientation > 8 {
			t.Fatalf("inconsistent header %+v", h)
		}
	})
}
