package model

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		d   Descriptor
		bad bool
	}{
		{Descriptor{Name: "yolo11n"}, false},
		{Descriptor{Name: "yolo11n", Version: "2026-11-28", Format: FormatONNX, InputWidth: 1280, InputHeight: 1280, Batch: 4, Output: OutputYOLONMS}, false},
		{Descriptor{Name: ""}, true},
		{Descriptor{Name: "../etc"}, true},
		{Descriptor{Name: "a/b"}, true},
		{Descriptor{Name: "m", Version: "1 2"}, true},
		{Descriptor{Name: "m", Format: "pt"}, true},
		{Descriptor{Name: "m", InputWidth: 641, InputHeight: 640}, true},
		{Descriptor{Name: "m", Batch: -1}, true},
		{Descriptor{Name: "m", Layout: "CHWN"}, true},
		{Descriptor{Name: "m", DType: "int8"}, true},
		{Descriptor{Name: "m", Output: "boxes"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.d.Name+"/"+tc.d.Version+tc.d.Format+tc.d.Output, func(t *testing.T) {
			err := tc.d.Validate()
			if tc.bad != (err != nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Validate(%+v) = %v, want bad=%v", tc.d, err, tc.bad)
			}
		})
	}
}

func TestReadSidecar(t *testing.T) {
	dir := t.TempDir()
	onnx := filepath.Join(dir, "det.onnx")
	if d, err := ReadSidecar(onnx); d != nil || err != nil {
		t.Fatalf("no sidecar: %v %v", d, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "det.yaml"), []byte("name: det\nversion: \"3\"\noutput: yolo-nms\nclasses: [a, b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := ReadSidecar(onnx)
	if err != nil || d.Name != "det" || d.Version != "3" || d.Output != OutputYOLONMS || len(d.Classes) != 2 || d.ID() != "det:3" {
		t.Fatalf("sidecar: %+v %v", d, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "det.yaml"), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSidecar(onnx); err == nil {
		t.Fatal("a broken sidecar was accepted")
	}
}

func TestNameFromFile(t *testing.T) {
	for in, want := range map[string]string{
		"/m/yolo11n_int8.onnx":  "yolo11n_int8",
		"my model (v2).onnx":    "my_model__v2",
		".hidden.onnx":          "hidden",
		"/x/det.v3-fp16.engine": "det.v3-fp16",
		"/x/данные.onnx":        "",
	} {
		if got := NameFromFile(in); got != want {
			t.Errorf("NameFromFile(%q) = %q, want %q", in, got, want)
		}
	}
}
