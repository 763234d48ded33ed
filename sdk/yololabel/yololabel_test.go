package yololabel

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		reason   string
	}{
		{"empty", "", 0, ""},
		{"one", "3 0.5 0.5 0.2 0.1\n", 1, ""},
		{"blank lines", "\n1 0.1 0.1 0.1 0.1\n\n2 0.2 0.2 0.1 0.1", 2, ""},
		{"four fields", "1 0.5 0.5 0.2", 0, "4 fields"},
		{"float class", "1.5 0.5 0.5 0.2 0.2", 0, "not an integer"},
		{"word", "1 a 0.5 0.2 0.2", 0, "not a number"},
		{"nan", "1 NaN 0.5 0.2 0.2", 0, "not finite"},
		{"inf", "1 0.5 0.5 +Inf 0.2", 0, "not finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if tc.reason != "" {
				var le *LineError
				if !errors.As(err, &le) || !strings.Contains(le.Reason, tc.reason) {
					t.Fatalf("err = %v, want reason %q", err, tc.reason)
				}
				return
			}
			if err != nil || len(got) != tc.n {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	o := CheckOptions{Tolerance: 0.01, ClassOK: func(c int) bool { return c == 1 }}
	tests := []struct {
		name   string
		b      Box
		reason string
	}{
		{"ok", Box{1, 0.5, 0.5, 0.2, 0.2}, ""},
		{"edge within tolerance", Box{1, 0.1, 0.5, 0.205, 0.2}, ""},
		{"class", Box{2, 0.5, 0.5, 0.2, 0.2}, "class 2"},
		{"zero width", Box{1, 0.5, 0.5, 0, 0.2}, "width"},
		{"big height", Box{1, 0.5, 0.5, 0.2, 1.5}, "height"},
		{"outside", Box{1, 0.95, 0.5, 0.2, 0.2}, "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.b, o)
			if (tc.reason == "") != (got == "") || !strings.Contains(got, tc.reason) {
				t.Fatalf("Check = %q, want %q", got, tc.reason)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	in := []Box{{0, 0.123456, 0.5, 0.25, 0.75}, {42, 0.9, 0.1, 0.01, 0.02}}
	out, err := Parse(strings.NewReader(string(Format(in))))
	if err != nil || len(out) != 2 {
		t.Fatal(out, err)
	}
	for i := range in {
		if in[i].Class != out[i].Class || math.Abs(in[i].CX-out[i].CX) > 1e-6 || math.Abs(in[i].H-out[i].H) > 1e-6 {
			t.Fatalf("%v != %v", in[i], out[i])
		}
	}
	x1, y1, x2, y2 := in[0].Rect(1000, 500)
	b := FromRect(0, x1, y1, x2, y2, 1000, 500)
	if math.Abs(b.CX-in[0].CX) > 1e-12 || math.Abs(b.W-in[0].W) > 1e-12 {
		t.Fatal(b)
	}
}
