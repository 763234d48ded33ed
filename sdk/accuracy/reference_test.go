package accuracy

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestMatchesPycocotools: on 60 random images with 4 classes (jittered true
// positives, wrong classes, misses, false positives; boxes in COCO xywh),
// Evaluate gives the mAP that pycocotools' COCOeval computed for the same
// data (bbox, area "all", maxDets raised above the detections per image),
// stored with the data in testdata/coco_reference.json.
func TestMatchesPycocotools(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "coco_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		GT struct {
			Images []struct{ ID int } `json:"images"`
			Anns   []struct {
				Image int        `json:"image_id"`
				Cat   int        `json:"category_id"`
				BBox  [4]float64 `json:"bbox"`
			} `json:"annotations"`
		} `json:"gt"`
		Dets []struct {
			Image int        `json:"image_id"`
			Cat   int        `json:"category_id"`
			BBox  [4]float64 `json:"bbox"`
			Score float64    `json:"score"`
		} `json:"dets"`
		Ref struct {
			Version string  `json:"version"`
			MAP50   float64 `json:"map50"`
			MAP5095 float64 `json:"map50_95"`
		} `json:"pycocotools"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	xyxy := func(b [4]float64) Box { return Box{b[0], b[1], b[0] + b[2], b[1] + b[3]} }
	ims := make([]Image, len(d.GT.Images))
	for _, a := range d.GT.Anns {
		ims[a.Image].Truth = append(ims[a.Image].Truth, Object{a.Cat, xyxy(a.BBox)})
	}
	for _, a := range d.Dets {
		ims[a.Image].Detections = append(ims[a.Image].Detections, Detection{a.Cat, a.Score, xyxy(a.BBox)})
	}
	r, err := Evaluate(ims)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.MAP50-d.Ref.MAP50) > 1e-9 || math.Abs(r.MAP5095-d.Ref.MAP5095) > 1e-9 {
		t.Fatalf("mAP50 %.9f, mAP50-95 %.9f; pycocotools %s: %.9f, %.9f", r.MAP50, r.MAP5095, d.Ref.Version, d.Ref.MAP50, d.Ref.MAP5095)
	}
}
