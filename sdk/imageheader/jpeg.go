package imageheader

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// readJPEG walks a JPEG's marker segments up to its first scan, by their
// lengths (so an EXIF thumbnail's markers are not mistaken for the image's):
// the frame header (SOFn) gives the size, components and coding; the first
// APP1 segment, when it is EXIF, the orientation (OpenCV reads the same
// one). The data must then hold an end-of-image marker after the scan.
func readJPEG(b []byte) (Header, error) {
	h := Header{Format: JPEG, Orientation: 1}
	sawSOF, sawAPP1 := false, false
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return h, fmt.Errorf("corrupt JPEG: bad marker at offset %d", i)
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xD8 || m >= 0xD0 && m <= 0xD7 || m == 0x01: // standalone markers
			i += 2
			continue
		case m == 0xD9:
			return h, fmt.Errorf("truncated JPEG: end of image before any scan")
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return h, fmt.Errorf("corrupt JPEG: marker %#02x at offset %d has length %d", m, i, n)
		}
		if i+2+n > len(b) {
			return h, fmt.Errorf("truncated JPEG: marker %#02x at offset %d runs past the end", m, i)
		}
		seg := b[i+4 : i+2+n]
		switch {
		case m == 0xDA: // start of scan
			if !sawSOF {
				return h, fmt.Errorf("corrupt JPEG: scan before the frame header")
			}
			if bytes.LastIndex(b, []byte{0xFF, 0xD9}) < i+2+n {
				return h, fmt.Errorf("truncated JPEG: no end-of-image marker")
			}
			return h, nil
		case m == 0xE1 && !sawAPP1:
			sawAPP1 = true
			h.Orientation = exifOrientation(seg)
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC: // SOFn
			if sawSOF {
				return h, fmt.Errorf("corrupt JPEG: two frame headers")
			}
			sawSOF = true
			if err := readSOF(&h, m, seg); err != nil {
				return h, err
			}
		}
		i += 2 + n
	}
	return h, fmt.Errorf("truncated JPEG: no image data")
}

// readSOF reads a frame header: precision (1), height (2), width (2),
// components (1), then 3 bytes per component.
func readSOF(h *Header, m byte, seg []byte) error {
	if len(seg) < 6 {
		return fmt.Errorf("corrupt JPEG: short frame header")
	}
	switch m {
	case 0xC0, 0xC1, 0xC9: // baseline, extended sequential (Huffman, arithmetic)
	case 0xC2, 0xCA: // progressive (Huffman, arithmetic)
		h.Progressive = true
	default:
		return fmt.Errorf("unsupported JPEG coding (SOF%d: lossless or hierarchical)", m-0xC0)
	}
	if seg[0] != 8 {
		return fmt.Errorf("unsupported JPEG precision: %d bits per sample, want 8", seg[0])
	}
	h.Height = int(binary.BigEndian.Uint16(seg[1:]))
	h.Width = int(binary.BigEndian.Uint16(seg[3:]))
	h.Components = int(seg[5])
	switch h.Components {
	case 1, 3, 4:
	default:
		return fmt.Errorf("unsupported JPEG: %d colour components", h.Components)
	}
	if len(seg) < 6+3*h.Components {
		return fmt.Errorf("corrupt JPEG: short frame header")
	}
	return nil
}

// exifOrientation reads the orientation tag (0x0112) of IFD0 from an APP1
// segment's payload; 1 when the segment is not EXIF or the tag is absent or
// out of range.
func exifOrientation(seg []byte) int {
	if len(seg) < 6 || string(seg[:6]) != "Exif\x00\x00" {
		return 1
	}
	t := seg[6:] // TIFF header: byte order, 42, offset of IFD0
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 1
	}
	count := uint64(bo.Uint16(t[off:]))
	for k := range count {
		e := off + 2 + 12*k
		if e+12 > uint64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if typ := bo.Uint16(t[e+2:]); typ != 3 { // SHORT
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
