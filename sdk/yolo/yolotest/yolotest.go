// Package yolotest compares detections with the reference detections of the
// shared test models (<model>.ref.json beside them). It is imported only by
// tests: the backend plugins' and the daemon's end-to-end tests.
package yolotest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo"
)

// Tolerances of a match (see the shared models' README).
const (
	// MinScore is the lowest reference or detected score that is compared.
	MinScore = 0.5
	// ScoreTol is the largest allowed score difference.
	ScoreTol = 0.05
	// MinIoU is the smallest allowed IoU between matched boxes.
	MinIoU = 0.9
)

// Image is the reference for one image.
type Image struct {
	Width      int         `json:"width"`
	Height     int         `json:"height"`
	Detections []Detection `json:"detections"`
}

// Detection is one reference detection; its box is x1,y1,x2,y2 in original pixels.
type Detection struct {
	ClassID int        `json:"class_id"`
	Class   string     `json:"class"`
	Score   float32    `json:"score"`
	Box     [4]float32 `json:"box_xyxy"`
}

// refFile is the part of a ref.json that is read: the canonical `reference`
// (OpenCV preprocessing) when present, else the top-level `images`.
type refFile struct {
	Reference *struct {
		Images map[string]Image `json:"images"`
	} `json:"reference"`
	Images map[string]Image `json:"images"`
}

// Load reads the reference for image (e.g. "bus.jpg") from a ref.json.
func Load(t testing.TB, path, image string) Image {
	t.Helper()
	img, err := Read(path, image)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Read is Load without a testing.TB.
func Read(path, image string) (Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("read reference: %w", err)
	}
	var f refFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Image{}, fmt.Errorf("parse reference %s: %w", path, err)
	}
	images := f.Images
	if f.Reference != nil {
		images = f.Reference.Images
	}
	img, ok := images[image]
	if !ok {
		return Image{}, fmt.Errorf("reference %s has no image %q", path, image)
	}
	return img, nil
}

// Match fails t unless got matches ref: every reference detection scoring
// at least MinScore is matched by a distinct detection of the same class,
// with a score within ScoreTol and a box IoU of at least MinIoU, and every
// detection scoring at least MinScore matches some reference detection.
func Match(t testing.TB, got []yolo.Detection, ref Image) {
	t.Helper()
	if err := Compare(got, ref); err != nil {
		t.Errorf("%v\ngot:\n%s", err, Format(got))
	}
}

// Compare is Match returning an error instead of failing a test.
func Compare(got []yolo.Detection, ref Image) error {
	var problems []string
	used := make([]bool, len(got))
	for _, r := range ref.Detections {
		if r.Score < MinScore {
			continue
		}
		best, bestIoU := -1, float32(0)
		for i, g := range got {
			if used[i] || !matches(g, r) {
				continue
			}
			if iou := yolo.IoU(g.Box, refBox(r)); iou > bestIoU {
				best, bestIoU = i, iou
			}
		}
		if best < 0 {
			problems = append(problems, fmt.Sprintf("reference %s (class %d) %.3f %v not found", r.Class, r.ClassID, r.Score, r.Box))
			continue
		}
		used[best] = true
	}
	for i, g := range got {
		if used[i] || g.Score < MinScore {
			continue
		}
		found := false
		for _, r := range ref.Detections {
			if matches(g, r) {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("unexpected detection class %d %.3f %+v", g.ClassID, g.Score, g.Box))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("detections differ from the reference:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func matches(g yolo.Detection, r Detection) bool {
	return g.ClassID == r.ClassID &&
		math.Abs(float64(g.Score-r.Score)) <= ScoreTol &&
		yolo.IoU(g.Box, refBox(r)) >= MinIoU
}

func refBox(r Detection) yolo.Box {
	return yolo.Box{X1: r.Box[0], Y1: r.Box[1], X2: r.Box[2], Y2: r.Box[3]}
}

// Format renders detections one per line for failure messages.
func Format(dets []yolo.Detection) string {
	var b strings.Builder
	for _, d := range dets {
		fmt.Fprintf(&b, "  class %2d  %.4f  [%.1f %.1f %.1f %.1f]\n", d.ClassID, d.Score, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2)
	}
	return b.String()
}

// FromAPI converts the daemon's JSON detections back to yolo.Detection, so
// end-to-end tests can compare an HTTP answer with a reference.
func FromAPI(ds []api.Detection) []yolo.Detection {
	out := make([]yolo.Detection, len(ds))
	for i, d := range ds {
		out[i] = yolo.Detection{ClassID: d.ClassID, Score: float32(d.Score),
			Box: yolo.Box{X1: float32(d.Box.X1), Y1: float32(d.Box.Y1), X2: float32(d.Box.X2), Y2: float32(d.Box.Y2)}}
	}
	return out
}

// ComparePair compares two detection lists of the same image made along
// different paths (a video frame and the same frame extracted as an image):
// every detection of either list scoring at least MinScore+ScoreTol must
// have a counterpart in the other of the same class, a score within
// ScoreTol and a box IoU of at least MinIoU. Detections near the threshold
// need no counterpart, since the other path may score them just under it.
func ComparePair(got, want []yolo.Detection) error {
	var problems []string
	check := func(what string, a, b []yolo.Detection) {
		for _, d := range a {
			if d.Score < MinScore+ScoreTol {
				continue
			}
			found := false
			for _, e := range b {
				if e.ClassID == d.ClassID && math.Abs(float64(e.Score-d.Score)) <= ScoreTol && yolo.IoU(e.Box, d.Box) >= MinIoU {
					found = true
					break
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s class %d %.3f [%.1f %.1f %.1f %.1f] has no counterpart", what, d.ClassID, d.Score, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2))
			}
		}
	}
	check("got", got, want)
	check("want", want, got)
	if len(problems) > 0 {
		return fmt.Errorf("detections differ:\n  %s\ngot:\n%swant:\n%s", strings.Join(problems, "\n  "), Format(got), Format(want))
	}
	return nil
}
