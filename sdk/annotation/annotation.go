// Package annotation is the message schema of the annotation stream
// (RabbitMQ stream `azaion-annotations`): the events annotators produce and
// the daemon's ingest turns into images and YOLO labels under the data root.
// It is pure Go (no cgo), imported by the daemon, its CLI and any producer.
//
// # Wire format
//
// One message is one MessagePack array ("positional integer keys": the
// position is the key). Schema version 1 has exactly 8 elements:
//
//	index  field         msgpack type           meaning
//	0      version       uint                   schema version; always 1 for this layout
//	1      name          str                    annotation name: the file stem of the image and
//	                                            label files, 1..128 bytes of [A-Za-z0-9._-], not
//	                                            starting with '.', never containing ".."
//	2      operation     uint                   0 created (unvalidated -> data-seed/),
//	                                            1 validated (-> data/, moved out of data-seed/),
//	                                            2 edited (labels replaced in place),
//	                                            3 deleted (soft delete -> data_deleted/)
//	3      created       int                    when the annotator made the event, Unix milliseconds (UTC)
//	4      author        str                    who made it (annotator login); at most 256 bytes
//	5      image_format  str                    "jpg" or "png"; "" when image is empty
//	6      image         bin or nil             the encoded image; required for created, optional
//	                                            for validated (the data-seed/ copy is moved
//	                                            otherwise), ignored for edited and deleted
//	7      labels        array of array(5)      boxes [class uint, cx, cy, w, h float]: class in
//	                                            0..79 (17 base classes x 3 weather modes, see
//	                                            sdk/classes), centre and size normalised to the
//	                                            image (0..1, w and h > 0); at most 10,000 boxes.
//	                                            May be empty (an image with no objects). Ignored
//	                                            for deleted.
//
// Numbers may be encoded with any msgpack integer or float width; cx, cy, w
// and h may be integers (0 or 1). A decoder rejects anything else: not
// msgpack, not an array, a different element count, a wrong type, an unknown
// version or operation, an unsafe name, an image over the size limit or that
// does not decode as its format, labels out of range. Trailing bytes after
// the array are an error too.
//
// # Example
//
// The created event of annotation "frame_000042" by "ann1" at
// 2026-11-28T12:00:00Z with a (truncated) JPEG and one box of class 2:
//
//	98                               array(8)
//	   01                            version 1
//	   ac 66 72 61 6d 65 5f 30 30 30 30 34 32   "frame_000042"
//	   00                            operation 0 (created)
//	   cf 00 00 01 a2 22 06 ca 00    created 1795867200000 (uint64)
//	   a4 61 6e 6e 31                "ann1"
//	   a3 6a 70 67                   "jpg"
//	   c5 NN NN ff d8 ff ...         bin16: the JPEG bytes
//	   91                            array(1): one box
//	      95 02 cb 3f e0 00 00 00 00 00 00 cb 3f d0 ...   [2, 0.5, 0.25, 0.1, 0.2] (float64)
//
// Encode produces exactly this layout (the example test checks it).
package annotation

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the decoders used by checkImage
	_ "image/png"
	"math"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/azaion/edge/sdk/classes"
)

// Version is the schema version this package writes and reads.
const Version = 1

// Fields is the number of elements of a version 1 message.
const Fields = 8

// Limits of the schema.
const (
	// MaxNameLen is the longest annotation name, in bytes.
	MaxNameLen = 128
	// MaxAuthorLen is the longest author, in bytes.
	MaxAuthorLen = 256
	// MaxBoxes is the most boxes one message may carry.
	MaxBoxes = 10_000
	// DefaultMaxImageBytes is the image size limit when DecodeOptions leaves it 0.
	DefaultMaxImageBytes = 20 << 20
	// DefaultMaxPixels is the decoded-size limit when DecodeOptions leaves it 0.
	DefaultMaxPixels = 100_000_000
)

// Operation is what happened to an annotation.
type Operation uint8

// The operations, with their wire values.
const (
	// Created is a new, unvalidated annotation: it goes to data-seed/.
	Created Operation = 0
	// Validated is an annotation a validator accepted: it goes to data/.
	Validated Operation = 1
	// Edited replaces the labels of an existing annotation where it is.
	Edited Operation = 2
	// Deleted soft-deletes an annotation: it moves to data_deleted/.
	Deleted Operation = 3
)

// String returns the operation's name.
func (o Operation) String() string {
	switch o {
	case Created:
		return "created"
	case Validated:
		return "validated"
	case Edited:
		return "edited"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("operation(%d)", uint8(o))
}

// ParseOperation parses an operation name ("created", "validated", "edited", "deleted").
func ParseOperation(s string) (Operation, error) {
	for o := Created; o <= Deleted; o++ {
		if o.String() == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown operation %q (want created, validated, edited or deleted)", s)
}

// Box is one labelled object: a class slot and a box normalised to the image.
type Box struct {
	// Class is the class slot, 0..79.
	Class int
	// CX, CY are the box centre; W, H its size; all in 0..1.
	CX, CY, W, H float64
}

// Annotation is one decoded message.
type Annotation struct {
	// Name is the file stem of the image and label files.
	Name string
	// Op is what happened.
	Op Operation
	// Created is when the annotator made the event.
	Created time.Time
	// Author is who made it.
	Author string
	// ImageFormat is "jpg" or "png" ("" without an image).
	ImageFormat string
	// Image is the encoded image (nil when the message has none).
	Image []byte
	// Labels are the boxes.
	Labels []Box
}

// Reason classifies why a message was rejected.
type Reason string

// The rejection reasons, one per kind of bad message.
const (
	ReasonNotMsgpack Reason = "not-msgpack"
	ReasonArity      Reason = "wrong-arity"
	ReasonType       Reason = "wrong-type"
	ReasonVersion    Reason = "unknown-version"
	ReasonOperation  Reason = "unknown-operation"
	ReasonName       Reason = "bad-name"
	ReasonImageSize  Reason = "image-too-large"
	ReasonImage      Reason = "bad-image"
	ReasonLabels     Reason = "bad-labels"
	ReasonAuthor     Reason = "bad-author"
)

// Error is a rejected message: the reason kind and a one-line explanation.
type Error struct {
	// Reason is the kind of problem.
	Reason Reason
	// Msg explains it in one line.
	Msg string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Msg }

func rejectf(r Reason, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\n", " "), "\r", " ")
	return &Error{Reason: r, Msg: msg}
}

// ReasonOf returns the reason of a decode error (or "" when err is not one).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// CheckName reports whether name is a safe annotation name (see the package doc).
func CheckName(name string) error {
	if name == "" {
		return rejectf(ReasonName, "name is empty")
	}
	if len(name) > MaxNameLen {
		return rejectf(ReasonName, "name is %d bytes, the limit is %d", len(name), MaxNameLen)
	}
	if strings.Contains(name, "..") {
		return rejectf(ReasonName, "name %q contains \"..\"", name)
	}
	if name[0] == '.' {
		return rejectf(ReasonName, "name %q starts with '.'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/' || c == '\\':
			return rejectf(ReasonName, "name %q contains a path separator", name)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return rejectf(ReasonName, "name %q contains byte 0x%02x (allowed: A-Z a-z 0-9 . _ -)", name, c)
		}
	}
	return nil
}

// CheckBox reports whether b is in range.
func CheckBox(i int, b Box) error {
	if b.Class < 0 || b.Class >= classes.Slots {
		return rejectf(ReasonLabels, "box %d: class %d is out of range 0..%d", i, b.Class, classes.Slots-1)
	}
	for _, v := range []struct {
		n string
		f float64
	}{{"cx", b.CX}, {"cy", b.CY}, {"w", b.W}, {"h", b.H}} {
		if math.IsNaN(v.f) || v.f < 0 || v.f > 1 {
			return rejectf(ReasonLabels, "box %d: %s %v is out of range 0..1", i, v.n, v.f)
		}
	}
	if b.W == 0 || b.H == 0 {
		return rejectf(ReasonLabels, "box %d: empty box (w %v, h %v)", i, b.W, b.H)
	}
	return nil
}

// CheckImage reports whether img is a well-formed image of the given format
// ("jpg" or "png") within the limits: the header must decode, the size must be
// within maxPixels, and the file must end with the format's end marker (JPEG
// EOI, PNG IEND), which catches truncated uploads without a full decode.
func CheckImage(format string, img []byte, maxBytes, maxPixels int) error {
	if len(img) > maxBytes {
		return rejectf(ReasonImageSize, "image is %d bytes, the limit is %d", len(img), maxBytes)
	}
	var want string
	switch format {
	case "jpg":
		want = "jpeg"
	case "png":
		want = "png"
	default:
		return rejectf(ReasonImage, "image format %q is not jpg or png", format)
	}
	cfg, got, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return rejectf(ReasonImage, "%s image does not decode: %v", format, err)
	}
	if got != want {
		return rejectf(ReasonImage, "image is declared %s but is %s", format, got)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return rejectf(ReasonImage, "image is %dx%d, over the %d pixel limit", cfg.Width, cfg.Height, maxPixels)
	}
	switch want {
	case "jpeg":
		t := bytes.TrimRight(img, "\x00")
		if len(t) < 2 || t[len(t)-2] != 0xff || t[len(t)-1] != 0xd9 {
			return rejectf(ReasonImage, "jpg image is truncated (no end-of-image marker)")
		}
	case "png":
		if len(img) < 12 || !bytes.Equal(img[len(img)-8:len(img)-4], []byte("IEND")) {
			return rejectf(ReasonImage, "png image is truncated (no IEND chunk)")
		}
	}
	return nil
}

// Validate checks a for the rules a decoder applies (see the package doc).
func (a *Annotation) Validate(o DecodeOptions) error {
	o = o.withDefaults()
	if a.Op > Deleted {
		return rejectf(ReasonOperation, "operation %d is not 0..3", uint8(a.Op))
	}
	if err := CheckName(a.Name); err != nil {
		return err
	}
	if len(a.Author) > MaxAuthorLen {
		return rejectf(ReasonAuthor, "author is %d bytes, the limit is %d", len(a.Author), MaxAuthorLen)
	}
	if a.Op == Created && len(a.Image) == 0 {
		return rejectf(ReasonImage, "a created annotation needs an image")
	}
	if len(a.Image) > 0 && (a.Op == Created || a.Op == Validated) {
		if err := CheckImage(a.ImageFormat, a.Image, o.MaxImageBytes, o.MaxPixels); err != nil {
			return err
		}
	}
	if len(a.Labels) > MaxBoxes {
		return rejectf(ReasonLabels, "%d boxes, the limit is %d", len(a.Labels), MaxBoxes)
	}
	if a.Op != Deleted {
		for i, b := range a.Labels {
			if err := CheckBox(i, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeOptions bounds what Decode accepts.
type DecodeOptions struct {
	// MaxImageBytes is the largest image accepted (default DefaultMaxImageBytes).
	MaxImageBytes int
	// MaxPixels is the largest image width*height accepted (default DefaultMaxPixels).
	MaxPixels int
}

func (o DecodeOptions) withDefaults() DecodeOptions {
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = DefaultMaxImageBytes
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	return o
}

// Encode returns the version 1 message for a. It does not validate a.
func Encode(a *Annotation) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(a.Image) + 64 + 48*len(a.Labels))
	enc := msgpack.NewEncoder(&buf)
	ms := a.Created.UnixMilli()
	if a.Created.IsZero() {
		ms = 0
	}
	err := errors.Join(
		enc.EncodeArrayLen(Fields),
		enc.EncodeUint(Version),
		enc.EncodeString(a.Name),
		enc.EncodeUint(uint64(a.Op)),
		enc.EncodeInt(ms),
		enc.EncodeString(a.Author),
		enc.EncodeString(a.ImageFormat),
	)
	if a.Image == nil {
		err = errors.Join(err, enc.EncodeNil())
	} else {
		err = errors.Join(err, enc.EncodeBytes(a.Image))
	}
	err = errors.Join(err, enc.EncodeArrayLen(len(a.Labels)))
	for _, b := range a.Labels {
		err = errors.Join(err, enc.EncodeArrayLen(5), enc.EncodeUint(uint64(b.Class)),
			enc.EncodeFloat64(b.CX), enc.EncodeFloat64(b.CY), enc.EncodeFloat64(b.W), enc.EncodeFloat64(b.H))
	}
	if err != nil {
		return nil, fmt.Errorf("encode annotation %q: %w", a.Name, err)
	}
	return buf.Bytes(), nil
}
