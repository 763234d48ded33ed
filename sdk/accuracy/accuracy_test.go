package accuracy

import (
	"math"
	"testing"
)

func box(x1, y1, x2, y2 float64) Box { return Box{x1, y1, x2, y2} }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestIoU(t *testing.T) {
	tests := []struct {
		a, b Box
		want float64
	}{
		{box(0, 0, 10, 10), box(0, 0, 10, 10), 1},
		{box(0, 0, 10, 10), box(5, 0, 15, 10), 50.0 / 150},
		{box(0, 0, 10, 10), box(10, 0, 20, 10), 0},
		{box(0, 0, 0, 0), box(0, 0, 0, 0), 0},
	}
	for _, tc := range tests {
		if got := IoU(tc.a, tc.b); !near(got, tc.want) {
			t.Errorf("IoU(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	gt := []Object{{0, box(10, 10, 50, 50)}, {1, box(60, 60, 100, 100)}}
	tests := []struct {
		name          string
		images        []Image
		map50, map595 float64
	}{
		{"perfect", []Image{{ID: "a", Truth: gt, Detections: []Detection{{0, 0.9, gt[0].Box}, {1, 0.8, gt[1].Box}}}}, 1, 1},
		{"nothing detected", []Image{{ID: "a", Truth: gt}}, 0, 0},
		{"wrong classes", []Image{{ID: "a", Truth: gt, Detections: []Detection{{1, 0.9, gt[0].Box}, {0, 0.8, gt[1].Box}}}}, 0, 0},
		// Class 0 found, class 1 missed: the mean over the two classes.
		{"half", []Image{{ID: "a", Truth: gt, Detections: []Detection{{0, 0.9, gt[0].Box}}}}, 0.5, 0.5},
		// A box shifted to IoU 0.6 counts at 0.50, 0.55, 0.60 (3 of 10 thresholds).
		{"iou 0.6", []Image{{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.9, box(10, 10, 50, 50+40*(1/0.6-1))}}}}, 1, 0.3},
		// A false positive ranked above the true one: precision 1/2 at recall 1,
		// so every recall point gets 0.5.
		{"fp first", []Image{{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.9, box(200, 200, 240, 240)}, {0, 0.5, gt[0].Box}}}}, 0.5, 0.5},
		// The same false positive ranked below: precision 1 up to recall 1.
		{"fp last", []Image{{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.5, box(200, 200, 240, 240)}, {0, 0.9, gt[0].Box}}}}, 1, 1},
		// A duplicate detection of one object is a false positive.
		{"duplicate", []Image{{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.9, gt[0].Box}, {0, 0.8, gt[0].Box}}}}, 1, 1},
		// Two images, two objects of a class, one found: recall reaches 0.5;
		// 51 of the 101 recall points (0..0.5) get precision 1.
		{"two images", []Image{
			{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.9, gt[0].Box}}},
			{ID: "b", Truth: gt[:1]},
		}, 51.0 / 101, 51.0 / 101},
		// A class with detections but no truth does not count in the mean.
		{"extra class", []Image{{ID: "a", Truth: gt[:1], Detections: []Detection{{0, 0.9, gt[0].Box}, {5, 0.9, gt[0].Box}}}}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Evaluate(tc.images)
			if err != nil {
				t.Fatal(err)
			}
			if !near(r.MAP50, tc.map50) || !near(r.MAP5095, tc.map595) {
				t.Errorf("mAP50 %v, mAP50-95 %v; want %v, %v (%+v)", r.MAP50, r.MAP5095, tc.map50, tc.map595, r.Classes)
			}
		})
	}
}

// TestMatchBestIoU: a detection takes the unmatched truth box it overlaps
// most, so a second, better-placed detection of the other object still matches.
func TestMatchBestIoU(t *testing.T) {
	a, b := box(0, 0, 10, 10), box(6, 0, 16, 10)
	im := Image{ID: "x", Truth: []Object{{0, a}, {0, b}}, Detections: []Detection{
		{0, 0.9, box(5, 0, 15, 10)}, // IoU 0.33 with a, 0.82 with b -> b
		{0, 0.8, a},
	}}
	r, err := Evaluate([]Image{im})
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.MAP50, 1) {
		t.Errorf("mAP50 = %v, want 1", r.MAP50)
	}
}

func TestEvaluateBadInput(t *testing.T) {
	for name, im := range map[string]Image{
		"nan box":        {ID: "a", Detections: []Detection{{0, 0.5, box(math.NaN(), 0, 1, 1)}}},
		"inverted truth": {ID: "a", Truth: []Object{{0, box(10, 10, 5, 5)}}},
		"score > 1":      {ID: "a", Detections: []Detection{{0, 1.5, box(0, 0, 1, 1)}}},
	} {
		if _, err := Evaluate([]Image{im}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
