package onnx

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/yolo"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

func TestHalfConversion(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800}, {65504, 0x7bff}, {1e6, 0x7c00}, {-1e6, 0xfc00},
		{float32(math.Inf(1)), 0x7c00}, {5.960464477539063e-08, 0x0001}, {6.097555160522461e-05, 0x03ff},
		{1e-9, 0}, {0.333251953125, 0x3555},
		{1.0009765625, 0x3c01}, // exactly representable
		{1 + 1.0/2048, 0x3c00}, // halfway between 0x3c00 and 0x3c01: ties to even
		{1 + 3.0/2048, 0x3c02}, // halfway between 0x3c01 and 0x3c02: ties to even
	} {
		if got := toHalf(tc.f); got != tc.h {
			t.Errorf("toHalf(%g) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	if h := toHalf(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("toHalf(NaN) = %#04x", h)
	}
	// Every finite half converts to float32 and back to itself.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if back := toHalf(fromHalf(uint16(h))); back != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, fromHalf(uint16(h)), back)
		}
	}
}

// TestFloat16Model: a model with float16 input and output (as an
// Ultralytics half=True export has them) loads and finds what the float32
// model finds on bus.jpg.
func TestFloat16Model(t *testing.T) {
	path := filepath.Join(t.TempDir(), "yolo11n_int8_fp16io.onnx")
	cmd := exec.Command("/usr/bin/python3", "testdata/fp16io.py", testenv.Model(t, "yolo11n_int8.onnx"), path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make the float16 model (needs Debian's python3-onnx, installed by make deps): %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Config{MaxBatch: 4})
	res, err := b.Load(context.Background(), model.Descriptor{Name: "fp16io"}, data)
	if err != nil {
		t.Fatalf("load a float16 model: %v", err)
	}
	imgs := [][]byte{readTestImage(t, "bus.jpg"), readTestImage(t, "bus.jpg")}
	out, err := b.Detect(context.Background(), res.Handle, imgs, backend.DetectParams{Params: yolo.Params{Conf: 0.25, IoU: 0.45, MaxDet: 300}})
	if err != nil {
		t.Fatal(err)
	}
	ref := yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg")
	for _, r := range out {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		yolotest.Match(t, r.Detections, ref)
	}
}
