// Package imagetest edits JPEG headers to make the unusual images the image
// checks and decoders are tested with (EXIF orientations, other frame
// types, a claimed size) from a real JPEG. It is imported only by tests.
package imagetest

import (
	"encoding/binary"
)

// segments calls f with the offset of each marker segment before the first
// scan and its marker; f returns false to stop.
func segments(b []byte, f func(i int, m byte) bool) {
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return
		}
		m := b[i+1]
		if m == 0xDA || !f(i, m) {
			return
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
}

// editSOF returns a copy of jpg with edit applied to its frame header
// segment (starting at the marker).
func editSOF(jpg []byte, edit func(seg []byte)) []byte {
	b := append([]byte(nil), jpg...)
	segments(b, func(i int, m byte) bool {
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			edit(b[i:])
			return false
		}
		return true
	})
	return b
}

// WithSOF returns a copy of jpg whose frame header marker is sof (0xC2
// claims progressive coding, 0xC3 lossless ...). Only the header changes:
// the scan data stays what it was.
func WithSOF(jpg []byte, sof byte) []byte {
	return editSOF(jpg, func(seg []byte) { seg[1] = sof })
}

// WithPrecision returns a copy of jpg whose frame header claims bits per sample.
func WithPrecision(jpg []byte, bits byte) []byte {
	return editSOF(jpg, func(seg []byte) { seg[4] = bits })
}

// Claiming returns a copy of jpg whose frame header claims w x h pixels.
func Claiming(jpg []byte, w, h int) []byte {
	return editSOF(jpg, func(seg []byte) {
		binary.BigEndian.PutUint16(seg[5:], uint16(h))
		binary.BigEndian.PutUint16(seg[7:], uint16(w))
	})
}

// WithOrientation returns a copy of jpg with an EXIF APP1 segment holding
// orientation o, in byte order bo, inserted right after SOI (so it is the
// first APP1 segment, the one decoders read).
func WithOrientation(jpg []byte, o int, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.BigEndian {
		copy(tiff, "MM")
	} else {
		copy(tiff, "II")
	}
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], 8) // IFD0 right after the header
	bo.PutUint16(tiff[8:], 1) // one entry
	e := tiff[10:]
	bo.PutUint16(e[0:], 0x0112) // Orientation
	bo.PutUint16(e[2:], 3)      // SHORT
	bo.PutUint32(e[4:], 1)      // count
	bo.PutUint16(e[8:], uint16(o))
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(payload)))
	out := make([]byte, 0, len(jpg)+len(seg)+len(payload))
	out = append(out, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}
