package yololabel

import (
	"bytes"
	"math"
	"testing"
)

// FuzzParse: any label file either parses into finite boxes that format
// and parse back to the same boxes, or is refused; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 0.5 0.5 0.2 0.2\n", "1 0.1 0.2 0.3 0.4\n\n2 0.5 0.5 1 1", "x 1 2 3 4", "0 NaN 0 0 0",
		"0 1e309 0 0 0", "0 0.5 0.5", "-1 0 0 0 0\r\n", "0 .5 .5 .1 .1 extra"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		boxes, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, x := range boxes {
			for _, v := range []float64{x.CX, x.CY, x.W, x.H} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("non-finite box %+v from %q", x, b)
				}
			}
		}
		again, err := Parse(bytes.NewReader(Format(boxes)))
		if err != nil {
			t.Fatalf("formatted labels do not parse: %v", err)
		}
		if len(boxes) == 0 && len(again) == 0 {
			return
		}
		for i := range boxes {
			if boxes[i].Class != again[i].Class {
				t.Fatalf("round trip changed class: %+v -> %+v", boxes[i], again[i])
			}
		}
	})
}
