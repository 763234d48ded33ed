package annotation

import (
	"encoding/binary"
	"math"
	"time"
)

// Decode parses and validates one message. The returned annotation's Image
// aliases b. Every failure is an *Error whose Reason names the kind of problem.
func Decode(b []byte, o DecodeOptions) (*Annotation, error) {
	o = o.withDefaults()
	r := &reader{b: b}
	n, err := r.arrayHeader("message")
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, rejectf(ReasonArity, "message is an empty array")
	}
	ver, err := r.uint("version (element 0)")
	if err != nil {
		return nil, err
	}
	if ver != Version {
		return nil, rejectf(ReasonVersion, "schema version %d is not supported (this decoder reads %d)", ver, Version)
	}
	if n != Fields {
		return nil, rejectf(ReasonArity, "version 1 message has %d elements, want %d", n, Fields)
	}
	a := &Annotation{}
	if a.Name, err = r.str("name (element 1)", MaxNameLen*4); err != nil {
		return nil, err
	}
	op, err := r.uint("operation (element 2)")
	if err != nil {
		return nil, err
	}
	if op > uint64(Deleted) {
		return nil, rejectf(ReasonOperation, "operation %d is not 0..3", op)
	}
	a.Op = Operation(op)
	ms, err := r.int("created (element 3)")
	if err != nil {
		return nil, err
	}
	a.Created = time.UnixMilli(ms).UTC()
	if a.Author, err = r.str("author (element 4)", 1<<20); err != nil {
		return nil, err
	}
	if a.ImageFormat, err = r.str("image_format (element 5)", 64); err != nil {
		return nil, err
	}
	if a.Image, err = r.binOrNil("image (element 6)", o.MaxImageBytes); err != nil {
		return nil, err
	}
	nb, err := r.arrayHeader("labels (element 7)")
	if err != nil {
		return nil, err
	}
	if nb > MaxBoxes {
		return nil, rejectf(ReasonLabels, "%d boxes, the limit is %d", nb, MaxBoxes)
	}
	a.Labels = make([]Box, nb)
	for i := range a.Labels {
		what := func(f string) string { return "labels[" + itoa(i) + "]" + f }
		k, err := r.arrayHeader(what(""))
		if err != nil {
			return nil, err
		}
		if k != 5 {
			return nil, rejectf(ReasonLabels, "box %d has %d elements, want 5 (class, cx, cy, w, h)", i, k)
		}
		c, err := r.uint(what(".class"))
		if err != nil {
			return nil, err
		}
		if c > math.MaxInt32 {
			c = math.MaxInt32
		}
		bx := Box{Class: int(c)}
		for _, f := range []struct {
			n string
			p *float64
		}{{".cx", &bx.CX}, {".cy", &bx.CY}, {".w", &bx.W}, {".h", &bx.H}} {
			if *f.p, err = r.number(what(f.n)); err != nil {
				return nil, err
			}
		}
		a.Labels[i] = bx
	}
	if r.off != len(r.b) {
		return nil, rejectf(ReasonNotMsgpack, "%d trailing bytes after the message", len(r.b)-r.off)
	}
	if err := a.Validate(o); err != nil {
		return nil, err
	}
	return a, nil
}

// reader is a bounds-checked MessagePack reader over one message.
type reader struct {
	b   []byte
	off int
}

func (r *reader) truncated(what string) error {
	return rejectf(ReasonNotMsgpack, "message is truncated in %s at byte %d", what, r.off)
}

func (r *reader) need(n int, what string) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, r.truncated(what)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) code(what string) (byte, error) {
	p, err := r.need(1, what)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *reader) sized(c byte, what string, s8, s16, s32 byte) (int, error) {
	var p []byte
	var err error
	switch c {
	case s8:
		p, err = r.need(1, what)
		if err != nil {
			return 0, err
		}
		return int(p[0]), nil
	case s16:
		p, err = r.need(2, what)
		if err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint16(p)), nil
	case s32:
		p, err = r.need(4, what)
		if err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint32(p)), nil
	}
	return -1, nil
}

// typeName names the msgpack type of code c, or "" when c is not valid msgpack.
func typeName(c byte) string {
	switch {
	case c <= 0x7f, c >= 0xe0, c >= 0xcc && c <= 0xd3:
		return "integer"
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return "map"
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		return "array"
	case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		return "string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2, c == 0xc3:
		return "bool"
	case c >= 0xc4 && c <= 0xc6:
		return "binary"
	case c == 0xca, c == 0xcb:
		return "float"
	case c >= 0xc7 && c <= 0xc9, c >= 0xd4 && c <= 0xd8:
		return "extension"
	}
	return ""
}

func (r *reader) wrongType(c byte, what, want string) error {
	t := typeName(c)
	if t == "" {
		return rejectf(ReasonNotMsgpack, "byte 0x%02x at offset %d is not a msgpack type (in %s)", c, r.off-1, what)
	}
	return rejectf(ReasonType, "%s is a %s, want %s", what, t, want)
}

func (r *reader) arrayHeader(what string) (int, error) {
	c, err := r.code(what)
	if err != nil {
		return 0, err
	}
	if c >= 0x90 && c <= 0x9f {
		return int(c & 0x0f), nil
	}
	if c == 0xdc || c == 0xdd {
		n, err := r.sized(c, what, 0, 0xdc, 0xdd)
		if err != nil {
			return 0, err
		}
		// Every element takes at least one byte.
		if n > len(r.b)-r.off {
			return 0, r.truncated(what)
		}
		return n, nil
	}
	return 0, r.wrongType(c, what, "an array")
}

// integer reads any msgpack integer as (value, negative).
func (r *reader) integer(c byte, what string) (u uint64, neg bool, ok bool, err error) {
	switch {
	case c <= 0x7f:
		return uint64(c), false, true, nil
	case c >= 0xe0:
		return uint64(-int64(int8(c))), true, true, nil
	}
	var width int
	signed := false
	switch c {
	case 0xcc:
		width = 1
	case 0xcd:
		width = 2
	case 0xce:
		width = 4
	case 0xcf:
		width = 8
	case 0xd0:
		width, signed = 1, true
	case 0xd1:
		width, signed = 2, true
	case 0xd2:
		width, signed = 4, true
	case 0xd3:
		width, signed = 8, true
	default:
		return 0, false, false, nil
	}
	p, err := r.need(width, what)
	if err != nil {
		return 0, false, false, err
	}
	var v uint64
	for _, x := range p {
		v = v<<8 | uint64(x)
	}
	if signed {
		s := int64(v<<(64-8*width)) >> (64 - 8*width)
		if s < 0 {
			return uint64(-s), true, true, nil
		}
		return uint64(s), false, true, nil
	}
	return v, false, true, nil
}

func (r *reader) uint(what string) (uint64, error) {
	c, err := r.code(what)
	if err != nil {
		return 0, err
	}
	u, neg, ok, err := r.integer(c, what)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, r.wrongType(c, what, "an unsigned integer")
	}
	if neg {
		return 0, rejectf(ReasonType, "%s is negative", what)
	}
	return u, nil
}

func (r *reader) int(what string) (int64, error) {
	c, err := r.code(what)
	if err != nil {
		return 0, err
	}
	u, neg, ok, err := r.integer(c, what)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, r.wrongType(c, what, "an integer")
	}
	if u > math.MaxInt64 {
		return 0, rejectf(ReasonType, "%s is out of the int64 range", what)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

func (r *reader) number(what string) (float64, error) {
	c, err := r.code(what)
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xca:
		p, err := r.need(4, what)
		if err != nil {
			return 0, err
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(p))), nil
	case 0xcb:
		p, err := r.need(8, what)
		if err != nil {
			return 0, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	}
	u, neg, ok, err := r.integer(c, what)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, r.wrongType(c, what, "a number")
	}
	if neg {
		return -float64(u), nil
	}
	return float64(u), nil
}

func (r *reader) str(what string, limit int) (string, error) {
	c, err := r.code(what)
	if err != nil {
		return "", err
	}
	n := -1
	if c >= 0xa0 && c <= 0xbf {
		n = int(c & 0x1f)
	} else if n, err = r.sized(c, what, 0xd9, 0xda, 0xdb); err != nil {
		return "", err
	}
	if n < 0 {
		return "", r.wrongType(c, what, "a string")
	}
	if n > limit {
		return "", rejectf(ReasonType, "%s is %d bytes, the limit is %d", what, n, limit)
	}
	p, err := r.need(n, what)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

func (r *reader) binOrNil(what string, limit int) ([]byte, error) {
	c, err := r.code(what)
	if err != nil {
		return nil, err
	}
	if c == 0xc0 {
		return nil, nil
	}
	n, err := r.sized(c, what, 0xc4, 0xc5, 0xc6)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, r.wrongType(c, what, "binary or nil")
	}
	if n > limit {
		return nil, rejectf(ReasonImageSize, "image is %d bytes, the limit is %d", n, limit)
	}
	return r.need(n, what)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}
