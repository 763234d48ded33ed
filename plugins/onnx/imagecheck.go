package onnx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/jpeg" // header sniffing only; OpenCV decodes

	_ "image/png"
)

// imageHeader is what an encoded image's header says, read without decoding.
type imageHeader struct {
	format        string
	width, height int
}

// readHeader reads the format and size of an encoded image from its header,
// so that oversized images are refused before any pixel is allocated, and
// checks that JPEG and PNG data is complete (OpenCV would otherwise decode a
// truncated file into a partly grey image).
func readHeader(b []byte) (imageHeader, error) {
	if len(b) == 0 {
		return imageHeader{}, fmt.Errorf("empty image")
	}
	var h imageHeader
	switch {
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return bmpHeader(b)
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return webpHeader(b)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return h, fmt.Errorf("not a JPEG, PNG, BMP or WebP image: %v", err)
	}
	h = imageHeader{format: format, width: cfg.Width, height: cfg.Height}
	switch format {
	case "jpeg", "png":
	default: // a decoder another package registered (gif): OpenCV 4.6 cannot decode it
		return h, fmt.Errorf("not a JPEG, PNG, BMP or WebP image: %s is not supported", format)
	}
	switch format {
	case "jpeg":
		if err := jpegComplete(b); err != nil {
			return h, err
		}
	case "png":
		if !bytes.Contains(b[max(0, len(b)-64):], []byte("IEND")) {
			return h, fmt.Errorf("truncated PNG: no IEND chunk")
		}
	}
	return h, nil
}

// jpegComplete checks that a JPEG has an end-of-image marker after the start
// of its first scan (markers before the scan are skipped by their lengths,
// so an EXIF thumbnail's markers are not mistaken for the image's).
func jpegComplete(b []byte) error {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return fmt.Errorf("corrupt JPEG: bad marker at offset %d", i)
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xD8 || m >= 0xD0 && m <= 0xD7 || m == 0x01:
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if m == 0xDA { // start of scan
			if bytes.LastIndex(b, []byte{0xFF, 0xD9}) < i+2+n {
				return fmt.Errorf("truncated JPEG: no end-of-image marker")
			}
			return nil
		}
		i += 2 + n
	}
	return fmt.Errorf("truncated JPEG: no image data")
}

// bmpHeader reads a BMP's size (BITMAPINFOHEADER and later).
func bmpHeader(b []byte) (imageHeader, error) {
	if binary.LittleEndian.Uint32(b[14:]) < 40 {
		return imageHeader{}, fmt.Errorf("unsupported BMP header")
	}
	w := int32(binary.LittleEndian.Uint32(b[18:]))
	h := int32(binary.LittleEndian.Uint32(b[22:]))
	if h < 0 {
		h = -h
	}
	if w <= 0 {
		return imageHeader{}, fmt.Errorf("BMP width %d", w)
	}
	return imageHeader{format: "bmp", width: int(w), height: int(h)}, nil
}

// webpHeader reads a WebP's size from its VP8, VP8L or VP8X chunk.
func webpHeader(b []byte) (imageHeader, error) {
	if len(b) < 30 {
		return imageHeader{}, fmt.Errorf("truncated WebP header")
	}
	h := imageHeader{format: "webp"}
	c := b[12:]
	switch string(c[0:4]) {
	case "VP8 ": // frame tag (3), start code (3), then 14-bit w, h
		h.width = int(binary.LittleEndian.Uint16(c[14:]) & 0x3FFF)
		h.height = int(binary.LittleEndian.Uint16(c[16:]) & 0x3FFF)
	case "VP8L": // signature 0x2f, then 14-bit w-1, h-1
		v := binary.LittleEndian.Uint32(c[9:])
		h.width = int(v&0x3FFF) + 1
		h.height = int(v>>14&0x3FFF) + 1
	case "VP8X": // flags (4), then 24-bit w-1, h-1
		h.width = int(uint32(c[12])|uint32(c[13])<<8|uint32(c[14])<<16) + 1
		h.height = int(uint32(c[15])|uint32(c[16])<<8|uint32(c[17])<<16) + 1
	default:
		return h, fmt.Errorf("unknown WebP chunk %q", c[0:4])
	}
	return h, nil
}
