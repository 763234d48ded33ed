// Package yololabel reads, writes and checks YOLO detection label files: one
// object per line, "class cx cy w h", the box centre and size normalized to
// the image (0..1). It is pure Go, shared by the daemon's data tools and the
// trainer plugin.
package yololabel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Box is one labelled object in normalized YOLO form.
type Box struct {
	// Class is the class slot.
	Class int
	// CX, CY are the box centre; W, H its size; all normalized to 0..1.
	CX, CY, W, H float64
}

// Rect returns the box corners (x1, y1, x2, y2) in pixels of an image of size w x h.
func (b Box) Rect(w, h int) (x1, y1, x2, y2 float64) {
	fw, fh := float64(w), float64(h)
	return (b.CX - b.W/2) * fw, (b.CY - b.H/2) * fh, (b.CX + b.W/2) * fw, (b.CY + b.H/2) * fh
}

// FromRect returns the box of class c with corners (x1, y1, x2, y2) in pixels
// of an image of size w x h.
func FromRect(c int, x1, y1, x2, y2 float64, w, h int) Box {
	fw, fh := float64(w), float64(h)
	return Box{Class: c, CX: (x1 + x2) / 2 / fw, CY: (y1 + y2) / 2 / fh, W: (x2 - x1) / fw, H: (y2 - y1) / fh}
}

// LineError is a malformed or invalid label line.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Text is the line as read.
	Text string
	// Reason says what is wrong.
	Reason string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d %q: %s", e.Line, e.Text, e.Reason)
}

// Parse reads a label file body. Blank lines are skipped. It checks only the
// syntax (5 fields, an integer class, finite numbers); use Check for ranges.
func Parse(r io.Reader) ([]Box, error) {
	var out []Box
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		b, reason := parseLine(line)
		if reason != "" {
			return nil, &LineError{Line: n, Text: line, Reason: reason}
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}

func parseLine(line string) (Box, string) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return Box{}, fmt.Sprintf("%d fields, want 5 (class cx cy w h)", len(f))
	}
	c, err := strconv.Atoi(f[0])
	if err != nil {
		return Box{}, fmt.Sprintf("class %q is not an integer", f[0])
	}
	var v [4]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return Box{}, fmt.Sprintf("field %d %q is not a number", i+2, f[i+1])
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Box{}, fmt.Sprintf("field %d %q is not finite", i+2, f[i+1])
		}
		v[i] = x
	}
	return Box{Class: c, CX: v[0], CY: v[1], W: v[2], H: v[3]}, ""
}

// ReadFile parses the label file at path. A missing file is an empty label set.
func ReadFile(path string) ([]Box, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(b))
}

// Format writes boxes in YOLO text form, 6 decimals, one per line.
func Format(boxes []Box) []byte {
	var buf bytes.Buffer
	for _, b := range boxes {
		fmt.Fprintf(&buf, "%d %.6f %.6f %.6f %.6f\n", b.Class, b.CX, b.CY, b.W, b.H)
	}
	return buf.Bytes()
}

// CheckOptions bound what Check accepts.
type CheckOptions struct {
	// ClassOK reports whether a class id is allowed (nil allows 0..79).
	ClassOK func(int) bool
	// Tolerance is how far (normalized) a box edge may stick out of the image.
	Tolerance float64
}

// Check reports the first range problem of a box, or "" when it is valid:
// an allowed class, 0 < w, h <= 1, and the box inside the image within the tolerance.
func Check(b Box, o CheckOptions) string {
	ok := o.ClassOK
	if ok == nil {
		ok = func(c int) bool { return c >= 0 && c < 80 }
	}
	switch {
	case !ok(b.Class):
		return fmt.Sprintf("class %d is not a used class slot", b.Class)
	case !(b.W > 0 && b.W <= 1):
		return fmt.Sprintf("width %g is not in (0, 1]", b.W)
	case !(b.H > 0 && b.H <= 1):
		return fmt.Sprintf("height %g is not in (0, 1]", b.H)
	}
	t := o.Tolerance
	x1, y1, x2, y2 := b.CX-b.W/2, b.CY-b.H/2, b.CX+b.W/2, b.CY+b.H/2
	if x1 < -t || y1 < -t || x2 > 1+t || y2 > 1+t {
		return fmt.Sprintf("box (%.4f, %.4f)-(%.4f, %.4f) is outside the image (tolerance %g)", x1, y1, x2, y2, t)
	}
	return ""
}
