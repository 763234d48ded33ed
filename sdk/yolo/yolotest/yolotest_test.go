package yolotest

import (
	"path/filepath"
	"testing"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/yolo"
)

func TestReadBothFormats(t *testing.T) {
	for _, name := range []string{"yolo11n_int8.ref.json", "yolo11n_int8_nms.ref.json", "yolo11n_dequant_fp32.ref.json", "yolo11n_1280_fp32.ref.json"} {
		t.Run(name, func(t *testing.T) {
			img := Load(t, filepath.Join(testenv.Models(t), name), "bus.jpg")
			if img.Width != 810 || img.Height != 1080 || len(img.Detections) < 4 {
				t.Errorf("got %dx%d with %d detections", img.Width, img.Height, len(img.Detections))
			}
		})
	}
	if _, err := Read(filepath.Join(testenv.Models(t), "yolo11n_int8.ref.json"), "nope.jpg"); err == nil {
		t.Error("unknown image: want an error")
	}
}

func TestCompare(t *testing.T) {
	ref := Image{Width: 100, Height: 100, Detections: []Detection{
		{ClassID: 0, Class: "person", Score: 0.9, Box: [4]float32{10, 10, 50, 90}},
		{ClassID: 5, Class: "bus", Score: 0.6, Box: [4]float32{0, 0, 100, 60}},
		{ClassID: 2, Class: "car", Score: 0.3, Box: [4]float32{60, 60, 80, 80}},
	}}
	person := yolo.Detection{ClassID: 0, Score: 0.88, Box: yolo.Box{X1: 11, Y1: 10, X2: 50, Y2: 90}}
	bus := yolo.Detection{ClassID: 5, Score: 0.57, Box: yolo.Box{X1: 0, Y1: 0, X2: 100, Y2: 61}}
	tests := []struct {
		name string
		got  []yolo.Detection
		ok   bool
	}{
		{"exact set", []yolo.Detection{person, bus}, true},
		{"low-score extras ignored", []yolo.Detection{person, bus, {ClassID: 9, Score: 0.4}}, true},
		{"missing bus", []yolo.Detection{person}, false},
		{"wrong class", []yolo.Detection{person, {ClassID: 7, Score: 0.57, Box: bus.Box}}, false},
		{"score off", []yolo.Detection{person, {ClassID: 5, Score: 0.7, Box: bus.Box}}, false},
		{"box off", []yolo.Detection{person, {ClassID: 5, Score: 0.6, Box: yolo.Box{X1: 0, Y1: 0, X2: 100, Y2: 80}}}, false},
		{"unexpected confident detection", []yolo.Detection{person, bus, {ClassID: 9, Score: 0.8}}, false},
		{"ref under 0.5 matched above 0.5 is fine", []yolo.Detection{person, bus, {ClassID: 2, Score: 0.32, Box: yolo.Box{X1: 60, Y1: 60, X2: 80, Y2: 80}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Compare(tc.got, ref)
			if (err == nil) != tc.ok {
				t.Errorf("Compare = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
