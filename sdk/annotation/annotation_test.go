package annotation_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
)

var jpg = annotationtest.JPEG(1, 32, 24)

func valid() *annotation.Annotation {
	return &annotation.Annotation{
		Name: "frame_000042", Op: annotation.Created, Created: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Author: "ann1", ImageFormat: "jpg", Image: jpg,
		Labels: []annotation.Box{{Class: 2, CX: 0.5, CY: 0.25, W: 0.1, H: 0.2}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, op := range []annotation.Operation{annotation.Created, annotation.Validated, annotation.Edited, annotation.Deleted} {
		t.Run(op.String(), func(t *testing.T) {
			a := valid()
			a.Op = op
			b, err := annotation.Encode(a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := annotation.Decode(b, annotation.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != a.Name || got.Op != op || !got.Created.Equal(a.Created) || got.Author != a.Author ||
				got.ImageFormat != "jpg" || !bytes.Equal(got.Image, jpg) || len(got.Labels) != 1 || got.Labels[0] != a.Labels[0] {
				t.Fatalf("round trip: got %+v", got)
			}
		})
	}
}

// TestExample checks the encoded layout the package doc shows.
func TestExample(t *testing.T) {
	b, err := annotation.Encode(valid())
	if err != nil {
		t.Fatal(err)
	}
	want := "98" + "01" + "ac" + hex.EncodeToString([]byte("frame_000042")) + "00" + "cf000001a22206ca00" +
		"a4" + hex.EncodeToString([]byte("ann1")) + "a3" + hex.EncodeToString([]byte("jpg"))
	if got := hex.EncodeToString(b[:len(want)/2]); got != want {
		t.Fatalf("prefix\n got %s\nwant %s", got, want)
	}
	tail := "91" + "95" + "02" + "cb3fe0000000000000"
	rest := hex.EncodeToString(b[len(want)/2+3+len(jpg):])
	if !strings.HasPrefix(rest, tail) {
		t.Fatalf("labels: got %s, want prefix %s", rest, tail)
	}
}

// enc encodes an arbitrary value with msgpack (for hand-made bad messages).
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fields(a *annotation.Annotation) []any {
	return []any{1, a.Name, uint8(a.Op), a.Created.UnixMilli(), a.Author, a.ImageFormat, a.Image,
		[]any{[]any{2, 0.5, 0.25, 0.1, 0.2}}}
}

func with(i int, v any) []any {
	f := fields(valid())
	f[i] = v
	return f
}

func TestDecodeRejects(t *testing.T) {
	good, _ := annotation.Encode(valid())
	pngTrunc := annotationtest.PNG(4, 4)
	pngTrunc = pngTrunc[:len(pngTrunc)-12]
	tests := []struct {
		name   string
		msg    []byte
		reason annotation.Reason
		say    string
	}{
		{"empty", nil, annotation.ReasonNotMsgpack, "truncated"},
		{"not msgpack", []byte{0xc1, 0x00}, annotation.ReasonNotMsgpack, "not a msgpack type"},
		{"text", []byte("hello"), annotation.ReasonType, "want an array"},
		{"truncated", good[:len(good)-3], annotation.ReasonNotMsgpack, "truncated"},
		{"trailing", append(append([]byte{}, good...), 0x00), annotation.ReasonNotMsgpack, "trailing"},
		{"map", enc(t, map[string]any{"name": "x"}), annotation.ReasonType, "is a map"},
		{"empty array", enc(t, []any{}), annotation.ReasonArity, "empty"},
		{"short", enc(t, fields(valid())[:7]), annotation.ReasonArity, "7 elements"},
		{"long", enc(t, append(fields(valid()), "x")), annotation.ReasonArity, "9 elements"},
		{"version 2", enc(t, with(0, 2)), annotation.ReasonVersion, "version 2"},
		{"version string", enc(t, with(0, "1")), annotation.ReasonType, "version"},
		{"name int", enc(t, with(1, 5)), annotation.ReasonType, "name"},
		{"name slash", enc(t, with(1, "a/b")), annotation.ReasonName, "path separator"},
		{"name backslash", enc(t, with(1, `a\b`)), annotation.ReasonName, "path separator"},
		{"name dotdot", enc(t, with(1, "..")), annotation.ReasonName, `".."`},
		{"name dot", enc(t, with(1, ".hidden")), annotation.ReasonName, "starts with"},
		{"name nul", enc(t, with(1, "a\x00b")), annotation.ReasonName, "0x00"},
		{"name empty", enc(t, with(1, "")), annotation.ReasonName, "empty"},
		{"name long", enc(t, with(1, strings.Repeat("a", 129))), annotation.ReasonName, "limit"},
		{"op 4", enc(t, with(2, 4)), annotation.ReasonOperation, "operation 4"},
		{"op negative", enc(t, with(2, -1)), annotation.ReasonType, "negative"},
		{"created string", enc(t, with(3, "now")), annotation.ReasonType, "created"},
		{"author bool", enc(t, with(4, true)), annotation.ReasonType, "author"},
		{"image string", enc(t, with(6, "abc")), annotation.ReasonType, "image"},
		{"no image", enc(t, with(6, nil)), annotation.ReasonImage, "needs an image"},
		{"garbage image", enc(t, with(6, []byte("not a jpeg at all"))), annotation.ReasonImage, "does not decode"},
		{"truncated jpeg", enc(t, with(6, jpg[:len(jpg)-40])), annotation.ReasonImage, "truncated"},
		{"png declared jpg", enc(t, with(6, annotationtest.PNG(4, 4))), annotation.ReasonImage, "is png"},
		{"truncated png", enc(t, append(with(5, "png")[:6:6], pngTrunc, []any{})), annotation.ReasonImage, ""},
		{"format gif", enc(t, with(5, "gif")), annotation.ReasonImage, "not jpg or png"},
		{"labels map", enc(t, with(7, map[string]int{})), annotation.ReasonType, "labels"},
		{"box arity", enc(t, with(7, []any{[]any{1, 0.5, 0.5, 0.1}})), annotation.ReasonLabels, "4 elements"},
		{"class 80", enc(t, with(7, []any{[]any{80, 0.5, 0.5, 0.1, 0.1}})), annotation.ReasonLabels, "class 80"},
		{"class negative", enc(t, with(7, []any{[]any{-1, 0.5, 0.5, 0.1, 0.1}})), annotation.ReasonType, "negative"},
		{"cx 1.5", enc(t, with(7, []any{[]any{1, 1.5, 0.5, 0.1, 0.1}})), annotation.ReasonLabels, "cx 1.5"},
		{"h negative", enc(t, with(7, []any{[]any{1, 0.5, 0.5, 0.1, -0.1}})), annotation.ReasonLabels, "h -0.1"},
		{"w zero", enc(t, with(7, []any{[]any{1, 0.5, 0.5, 0, 0.1}})), annotation.ReasonLabels, "empty box"},
		{"nan", enc(t, with(7, []any{[]any{1, math.NaN(), 0.5, 0.1, 0.1}})), annotation.ReasonLabels, "NaN"},
		{"cy string", enc(t, with(7, []any{[]any{1, 0.5, "a", 0.1, 0.1}})), annotation.ReasonType, "labels[0].cy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := annotation.Decode(tc.msg, annotation.DecodeOptions{})
			if err == nil {
				t.Fatal("decoded a bad message")
			}
			var e *annotation.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *annotation.Error", err)
			}
			if e.Reason != tc.reason || !strings.Contains(e.Msg, tc.say) {
				t.Fatalf("got %v, want reason %s mentioning %q", err, tc.reason, tc.say)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("reason is not one line: %q", err.Error())
			}
		})
	}
}

func TestImageLimit(t *testing.T) {
	b, _ := annotation.Encode(valid())
	if _, err := annotation.Decode(b, annotation.DecodeOptions{MaxImageBytes: len(jpg) - 1}); annotation.ReasonOf(err) != annotation.ReasonImageSize {
		t.Fatalf("got %v, want %s", err, annotation.ReasonImageSize)
	}
	if _, err := annotation.Decode(b, annotation.DecodeOptions{MaxPixels: 100}); annotation.ReasonOf(err) != annotation.ReasonImage {
		t.Fatalf("got %v, want %s (pixels)", err, annotation.ReasonImage)
	}
}

func TestOptionalFields(t *testing.T) {
	tests := []struct {
		name string
		msg  []any
	}{
		{"validated without image", append(with(2, 1)[:5:5], "", nil, []any{})},
		{"deleted without labels", append(with(2, 3)[:5:5], "", nil, []any{})},
		{"edited, int coords", append(with(2, 2)[:5:5], "", nil, []any{[]any{79, 1, 0, 1, 1}})},
		{"float32 coords", with(7, []any{[]any{1, float32(0.5), float32(0.5), float32(0.5), float32(0.5)}})},
		{"png", append(with(5, "png")[:6:6], annotationtest.PNG(8, 8), []any{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := annotation.Decode(enc(t, tc.msg), annotation.DecodeOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseOperation(t *testing.T) {
	for o := annotation.Created; o <= annotation.Deleted; o++ {
		if got, err := annotation.ParseOperation(o.String()); err != nil || got != o {
			t.Fatalf("%s: got %v %v", o, got, err)
		}
	}
	if _, err := annotation.ParseOperation("removed"); err == nil {
		t.Fatal("parsed removed")
	}
}
