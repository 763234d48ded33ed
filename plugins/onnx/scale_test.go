package onnx

import (
	"context"
	"fmt"
	"testing"

	"github.com/azaion/edge/plugins/internal/imaging"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/yolo"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// detectAtScale preprocesses img with its JPEG decoded at scale/8 and runs
// the model on it.
func detectAtScale(t *testing.T, b *Backend, handle string, img []byte, scale int) []yolo.Detection {
	t.Helper()
	in := make([]float32, 3*640*640)
	p, err := imaging.Preprocess(img, in, 640, 640, false, imaging.Options{Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	if p.Scale != scale {
		t.Fatalf("decoded at %d/8, want %d/8", p.Scale, scale)
	}
	res, err := b.DetectTensor(context.Background(), handle, in, p.Letterbox, yolo.Params{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Detections
}

// asReference makes detections the reference of yolotest.Compare.
func asReference(dets []yolo.Detection, w, h int) yolotest.Image {
	ref := yolotest.Image{Width: w, Height: h}
	for _, d := range dets {
		ref.Detections = append(ref.Detections, yolotest.Detection{ClassID: d.ClassID, Class: fmt.Sprint(d.ClassID), Score: d.Score,
			Box: [4]float32{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}})
	}
	return ref
}

// TestScaledDecodeAccuracy: decoding a JPEG at a reduced DCT scale changes
// no detection scoring 0.5 or more (same class, score within 0.05, box IoU
// at least 0.9, in original pixels) against a full-size decode: on a 4K
// upscale of bus.jpg at 1/2, 1/4 (the scale Detect picks) and 3/8, and on
// bus.jpg itself at 1/2 and 5/8 (1/4 of bus.jpg is 203x270, under the
// 480x640 its letterbox needs: never picked, and it does lose the
// half-visible person at the left edge). Detect, which picks the scale
// itself, matches too.
func TestScaledDecodeAccuracy(t *testing.T) {
	b := newBackend(t, Config{})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	for _, tc := range []struct {
		name   string
		img    []byte
		w, h   int
		scales []int
	}{
		{"bus.jpg", imagingtest.Bus(t), 810, 1080, []int{4, 5}},
		{"4K", imagingtest.BusPortrait4K(t), 2880, 3840, []int{4, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := detectAtScale(t, b, lr.Handle, tc.img, imaging.FullScale)
			ref := asReference(full, tc.w, tc.h)
			strong := 0
			for _, d := range full {
				if d.Score >= yolotest.MinScore {
					strong++
				}
			}
			if strong < 2 {
				t.Fatalf("full-size decode finds %d detections over %.2f:\n%s", strong, yolotest.MinScore, yolotest.Format(full))
			}
			for _, s := range tc.scales {
				got := detectAtScale(t, b, lr.Handle, tc.img, s)
				if err := yolotest.Compare(got, ref); err != nil {
					t.Errorf("decoded at %d/8 vs full size: %v\ngot:\n%s\nfull size:\n%s", s, err, yolotest.Format(got), yolotest.Format(full))
				}
			}
			res, err := b.Detect(context.Background(), lr.Handle, [][]byte{tc.img}, backend.DetectParams{})
			if err != nil || res[0].Err != nil {
				t.Fatalf("detect: %v %v", err, res[0].Err)
			}
			if res[0].Width != tc.w || res[0].Height != tc.h {
				t.Errorf("detect reports %dx%d, want the original %dx%d", res[0].Width, res[0].Height, tc.w, tc.h)
			}
			if err := yolotest.Compare(res[0].Detections, ref); err != nil {
				t.Errorf("Detect vs full size: %v", err)
			}
		})
	}
}
