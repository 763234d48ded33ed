package annotation_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/azaion/edge/sdk/annotation"
)

// FuzzDecode checks that Decode never panics, that every failure is an
// *annotation.Error with a one-line reason, and that what it accepts
// re-encodes to a message that decodes to the same annotation. The seed
// corpus (valid messages of every operation plus testdata/*.msgpack) runs in
// plain `go test`.
func FuzzDecode(f *testing.F) {
	for _, op := range []annotation.Operation{annotation.Created, annotation.Validated, annotation.Edited, annotation.Deleted} {
		a := valid()
		a.Op = op
		b, _ := annotation.Encode(a)
		f.Add(b)
	}
	seeds, _ := filepath.Glob("testdata/*.msgpack")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x98, 0x01})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := annotation.Decode(b, annotation.DecodeOptions{MaxImageBytes: 1 << 20, MaxPixels: 1 << 22})
		if err != nil {
			if annotation.ReasonOf(err) == "" {
				t.Fatalf("error %v has no reason", err)
			}
			if bytes.ContainsAny([]byte(err.Error()), "\n\r") {
				t.Fatalf("multi-line reason %q", err.Error())
			}
			return
		}
		re, err := annotation.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := annotation.Decode(re, annotation.DecodeOptions{MaxImageBytes: 1 << 20, MaxPixels: 1 << 22})
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if a2.Name != a.Name || a2.Op != a.Op || !bytes.Equal(a2.Image, a.Image) || len(a2.Labels) != len(a.Labels) {
			t.Fatalf("round trip changed the annotation")
		}
	})
}
