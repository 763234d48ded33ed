// Package imageheader reads the format, size and layout of an encoded image
// (JPEG, PNG, BMP, WebP) from its header, without decoding any pixel and
// without cgo, and checks the size against the limits every part of Azaion
// Edge enforces. The daemon uses it to answer 415/422 before an image
// crosses to a plugin; the backend plugins use it before they allocate the
// decoded pixels; both therefore refuse the same images with the same words.
// Anyone may import it (it is pure Go, standard library only).
package imageheader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Format is an encoded image format.
type Format string

// The accepted formats (what OpenCV 4.6 and libjpeg-turbo decode).
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	BMP  Format = "bmp"
	WebP Format = "webp"
)

// Limits.
const (
	// MinSide is the smallest width or height accepted.
	MinSide = 2
	// HardMaxPixels bounds the pixels of any image (width*height) whatever
	// the caller's limit says, so a decoded image never takes more than about
	// 300 MB.
	HardMaxPixels = 100_000_000
)

// Errors. Every error of Read wraps ErrNotImage or ErrUnreadable; every
// error of CheckSize wraps ErrTooSmall or ErrTooLarge.
var (
	// ErrNotImage is the error of data that does not start like a JPEG, PNG,
	// BMP or WebP image (HTTP 415).
	ErrNotImage = errors.New("not a JPEG, PNG, BMP or WebP image")
	// ErrUnreadable is the error of an image of a known format whose header
	// is corrupt or unsupported, or whose data is truncated (HTTP 422).
	ErrUnreadable = errors.New("unreadable image")
	// ErrTooSmall is the error of an image under MinSide pixels on a side.
	ErrTooSmall = errors.New("image too small")
	// ErrTooLarge is the error of an image over the pixel limit.
	ErrTooLarge = errors.New("image too large")
)

// Header is what an encoded image's header says.
type Header struct {
	Format Format
	// Width and Height are the stored size, before any EXIF orientation.
	Width, Height int
	// Orientation is the JPEG's EXIF orientation (1..8; 1 when absent or
	// invalid): 5..8 swap width and height when displayed.
	Orientation int
	// Components is the JPEG's colour components: 1 grey, 3 YCbCr or RGB,
	// 4 CMYK or YCCK (0 for other formats).
	Components int
	// Progressive reports a progressive JPEG.
	Progressive bool
}

// OrientedSize returns the size of the image as displayed (and as OpenCV
// decodes it): width and height swapped for EXIF orientations 5..8.
func (h Header) OrientedSize() (w, ht int) {
	if h.Orientation >= 5 && h.Orientation <= 8 {
		return h.Height, h.Width
	}
	return h.Width, h.Height
}

// Check checks the header's size against MinSide and the pixel limit (see
// CheckSize).
func (h Header) Check(maxPixels int64) error {
	return CheckSize(h.Format, h.Width, h.Height, maxPixels)
}

// Limit returns the pixel limit in force for a caller's limit: maxPixels
// when it is positive and under HardMaxPixels, else HardMaxPixels.
func Limit(maxPixels int64) int64 {
	if maxPixels > 0 && maxPixels < HardMaxPixels {
		return maxPixels
	}
	return HardMaxPixels
}

// CheckSize refuses a w x h image under MinSide on a side (ErrTooSmall) or
// with more pixels than Limit(maxPixels) (ErrTooLarge); format names the
// image in the message.
func CheckSize(format Format, w, h int, maxPixels int64) error {
	if w < MinSide || h < MinSide {
		return fmt.Errorf("%w: %s image is %dx%d pixels; the smallest accepted is %dx%d", ErrTooSmall, format, w, h, MinSide, MinSide)
	}
	px, limit := int64(w)*int64(h), Limit(maxPixels)
	if px > limit {
		return fmt.Errorf("%w: %s image is %dx%d = %d pixels, over the limit of %d", ErrTooLarge, format, w, h, px, limit)
	}
	return nil
}

// Sniff returns the format b starts like, or "" when it is none of the
// accepted formats. It reads the magic bytes only.
func Sniff(b []byte) Format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG
	case bytes.HasPrefix(b, pngMagic):
		return PNG
	case bytes.HasPrefix(b, []byte("BM")):
		return BMP
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP
	}
	return ""
}

var pngMagic = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}

// Read reads the header of an encoded image. It also checks that JPEG and
// PNG data is complete (a decoder would otherwise turn a truncated file into
// a partly grey image). Data that is not a JPEG, PNG, BMP or WebP image is
// ErrNotImage; a broken header or truncated data is ErrUnreadable. Read does
// not check the size: see Header.Check.
func Read(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, fmt.Errorf("%w: empty image", ErrNotImage)
	}
	var (
		h   Header
		err error
	)
	switch Sniff(b) {
	case JPEG:
		h, err = readJPEG(b)
	case PNG:
		h, err = readPNG(b)
	case BMP:
		h, err = readBMP(b)
	case WebP:
		h, err = readWebP(b)
	default:
		return Header{}, fmt.Errorf("%w (it starts with % x)", ErrNotImage, b[:min(len(b), 8)])
	}
	if err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	if h.Orientation == 0 {
		h.Orientation = 1
	}
	return h, nil
}

// readPNG reads the IHDR chunk and checks for the IEND chunk at the end.
func readPNG(b []byte) (Header, error) {
	if len(b) < 8+8+13 || string(b[12:16]) != "IHDR" {
		return Header{}, fmt.Errorf("corrupt PNG: no IHDR chunk")
	}
	w, h := binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:])
	if w > 1<<31-1 || h > 1<<31-1 {
		return Header{}, fmt.Errorf("corrupt PNG: size %dx%d", w, h)
	}
	if !bytes.Contains(b[max(0, len(b)-64):], []byte("IEND")) {
		return Header{}, fmt.Errorf("truncated PNG: no IEND chunk")
	}
	return Header{Format: PNG, Width: int(w), Height: int(h)}, nil
}

// readBMP reads a BMP's size (BITMAPINFOHEADER and later).
func readBMP(b []byte) (Header, error) {
	if len(b) < 26 {
		return Header{}, fmt.Errorf("truncated BMP header")
	}
	if binary.LittleEndian.Uint32(b[14:]) < 40 {
		return Header{}, fmt.Errorf("unsupported BMP header")
	}
	w := int32(binary.LittleEndian.Uint32(b[18:]))
	h := int32(binary.LittleEndian.Uint32(b[22:]))
	if h < 0 {
		h = -h
	}
	if w <= 0 || h < 0 { // h < 0 still: it was MinInt32
		return Header{}, fmt.Errorf("BMP width %d height %d", w, h)
	}
	return Header{Format: BMP, Width: int(w), Height: int(h)}, nil
}

// readWebP reads a WebP's size from its VP8, VP8L or VP8X chunk.
func readWebP(b []byte) (Header, error) {
	if len(b) < 30 {
		return Header{}, fmt.Errorf("truncated WebP header")
	}
	h := Header{Format: WebP}
	c := b[12:]
	switch string(c[0:4]) {
	case "VP8 ": // frame tag (3), start code (3), then 14-bit w, h
		h.Width = int(binary.LittleEndian.Uint16(c[14:]) & 0x3FFF)
		h.Height = int(binary.LittleEndian.Uint16(c[16:]) & 0x3FFF)
	case "VP8L": // signature 0x2f, then 14-bit w-1, h-1
		v := binary.LittleEndian.Uint32(c[9:])
		h.Width = int(v&0x3FFF) + 1
		h.Height = int(v>>14&0x3FFF) + 1
	case "VP8X": // flags (4), then 24-bit w-1, h-1
		h.Width = int(uint32(c[12])|uint32(c[13])<<8|uint32(c[14])<<16) + 1
		h.Height = int(uint32(c[15])|uint32(c[16])<<8|uint32(c[17])<<16) + 1
	default:
		return h, fmt.Errorf("unknown WebP chunk %q", c[0:4])
	}
	return h, nil
}
