package onnx

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"os"
	"strings"
	"testing"
)

func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	if err := png.Encode(&buf, img); err != nil {
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

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadHeader(t *testing.T) {
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, image.NewPaletted(image.Rect(0, 0, 7, 5), []color.Color{color.Black}), nil); err != nil {
		t.Fatal(err)
	}
	bus := readTestImage(t, "bus.jpg")
	full := pngImage(t, 40, 30)
	tests := []struct {
		name   string
		in     []byte
		format string
		w, h   int
		err    string
	}{
		{"jpeg", bus, "jpeg", 810, 1080, ""},
		{"png", full, "png", 40, 30, ""},
		{"truncated png", full[:len(full)-20], "", 0, 0, "truncated PNG"},
		{"gif is not supported (OpenCV 4.6 cannot decode it)", gifBuf.Bytes(), "", 0, 0, "not a JPEG, PNG, BMP or WebP"},
		{"real bmp", readFile(t, "testdata/12x10.bmp"), "bmp", 12, 10, ""},
		{"real webp", readFile(t, "testdata/12x10.webp"), "webp", 12, 10, ""},
		{"bmp", bmpImage(640, -480), "bmp", 640, 480, ""},
		{"bmp zero width", bmpImage(0, 480), "", 0, 0, "width"},
		{"webp vp8x huge", webpVP8X(30000, 20000), "webp", 30000, 20000, ""},
		{"truncated jpeg", bus[:len(bus)-1000], "", 0, 0, "truncated JPEG"},
		{"jpeg without scan", bus[:2000], "", 0, 0, "JPEG"},
		{"empty", nil, "", 0, 0, "empty"},
		{"text", []byte("{\"json\": true}"), "", 0, 0, "not a JPEG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := readHeader(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.format != tc.format || h.width != tc.w || h.height != tc.h {
				t.Errorf("got %+v, want %s %dx%d", h, tc.format, tc.w, tc.h)
			}
		})
	}
}
