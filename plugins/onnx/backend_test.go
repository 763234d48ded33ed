package onnx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/imageheader/imagetest"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/yolo"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

func TestDetectMatchesReference(t *testing.T) {
	b := newBackend(t, Config{})
	bus := readTestImage(t, "bus.jpg")
	tests := []struct {
		model   string
		output  string
		size    int
		dynamic bool
	}{
		{"yolo11n_int8", model.OutputYOLORaw, 640, false},
		{"yolo11n_int8_nms", model.OutputYOLONMS, 640, false},
		{"yolo11n_dequant_fp32", model.OutputYOLORaw, 640, true},
		{"yolo11n_1280_fp32", model.OutputYOLORaw, 1280, true},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			lr := loadModel(t, b, tc.model+".onnx")
			d := lr.Descriptor
			if d.Output != tc.output || d.InputWidth != tc.size || d.InputHeight != tc.size || d.DynamicBatch != tc.dynamic {
				t.Errorf("descriptor = %s %dx%d dynamic %v, want %s %dx%d dynamic %v", d.Output, d.InputWidth, d.InputHeight, d.DynamicBatch, tc.output, tc.size, tc.size, tc.dynamic)
			}
			if len(d.Classes) != 80 || d.Classes[0] != "person" || d.Classes[5] != "bus" {
				t.Errorf("classes from metadata = %d names %q...", len(d.Classes), d.Classes[:min(6, len(d.Classes))])
			}
			if lr.Warmup <= 0 {
				t.Errorf("warm-up time %v", lr.Warmup)
			}
			res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.Width != 810 || r.Height != 1080 || r.BatchSize != 1 {
				t.Errorf("image %dx%d batch %d, want 810x1080 batch 1", r.Width, r.Height, r.BatchSize)
			}
			if r.Timings.Decode <= 0 || r.Timings.Preprocess <= 0 || r.Timings.Infer <= 0 || r.Timings.Post <= 0 {
				t.Errorf("timings not filled: %+v", r.Timings)
			}
			ref := yolotest.Load(t, testenv.Model(t, tc.model+".ref.json"), "bus.jpg")
			yolotest.Match(t, r.Detections, ref)
		})
	}
}

func TestDetectTensorReproducesReference(t *testing.T) {
	raw, err := os.ReadFile(testenv.Model(t, "images/bus.jpg.640.f32"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3*640*640*4 {
		t.Fatalf("bus.jpg.640.f32 has %d bytes, want %d", len(raw), 3*640*640*4)
	}
	input := make([]float32, 3*640*640)
	for i := range input {
		input[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
	}
	lb := yolo.NewLetterbox(810, 1080, 640, 640)
	if lb.PadX != 80 || lb.PadY != 0 || lb.NewW != 480 || lb.NewH != 640 {
		t.Fatalf("letterbox %+v", lb)
	}
	b := newBackend(t, Config{})
	for _, name := range []string{"yolo11n_int8", "yolo11n_int8_nms", "yolo11n_dequant_fp32"} {
		t.Run(name, func(t *testing.T) {
			lr := loadModel(t, b, name+".onnx")
			res, err := b.DetectTensor(context.Background(), lr.Handle, input, lb, yolo.Params{})
			if err != nil {
				t.Fatal(err)
			}
			yolotest.Match(t, res.Detections, yolotest.Load(t, testenv.Model(t, name+".ref.json"), "bus.jpg"))
		})
	}
	t.Run("wrong size", func(t *testing.T) {
		lr := loadModel(t, b, "yolo11n_int8.onnx")
		if _, err := b.DetectTensor(context.Background(), lr.Handle, input[:100], lb, yolo.Params{}); err == nil {
			t.Error("short tensor: want an error")
		}
	})
}

func TestConcurrentCallsFormOneBatch(t *testing.T) {
	b := newBackend(t, Config{MaxBatch: 4, BatchWait: time.Second})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	if lr.MaxBatch != 4 {
		t.Fatalf("max batch %d, want 4", lr.MaxBatch)
	}
	bus := readTestImage(t, "bus.jpg")
	alone, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([][]backend.ImageResult, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
		}()
	}
	close(start)
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		r := results[i][0]
		if r.BatchSize != 4 {
			t.Errorf("call %d ran in a batch of %d, want 4", i, r.BatchSize)
		}
		if len(r.Detections) != len(alone[0].Detections) {
			t.Fatalf("call %d: %d detections, alone %d", i, len(r.Detections), len(alone[0].Detections))
		}
		for j, d := range r.Detections {
			a := alone[0].Detections[j]
			if d.ClassID != a.ClassID || abs(d.Score-a.Score) > 1e-4 || yolo.IoU(d.Box, a.Box) < 0.999 {
				t.Errorf("call %d detection %d = %+v, alone %+v", i, j, d, a)
			}
		}
	}
	st, _ := b.Stats(context.Background())
	if m := st.Models[0]; m.Requests != 5 || m.Images != 5 || m.Batches != 2 || m.Busy <= 0 { // alone (1) + one batch (4); the warm-up is not counted
		t.Errorf("stats %+v, want 5 requests, 5 images, 2 batches", m)
	}
	t.Run("one call with nine images, one bad", func(t *testing.T) {
		imgs := [][]byte{bus, bus, bus, bus, []byte("junk"), bus, bus, bus, bus}
		res, err := b.Detect(context.Background(), lr.Handle, imgs, backend.DetectParams{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if i == 4 {
				if r.Err == nil || r.Err.Code != backend.ImageUndecodable {
					t.Errorf("image 4: %+v, want undecodable", r.Err)
				}
				continue
			}
			if r.Err != nil || r.BatchSize < 1 || yolotest.Format(r.Detections) != yolotest.Format(alone[0].Detections) {
				t.Errorf("image %d: batch %d, err %v, detections\n%s", i, r.BatchSize, r.Err, yolotest.Format(r.Detections))
			}
		}
	})
	t.Run("one call with four images, default wait", func(t *testing.T) {
		b := newBackend(t, Config{})
		lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
		res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus, bus, bus, bus}, backend.DetectParams{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.BatchSize != 4 || yolotest.Format(r.Detections) != yolotest.Format(alone[0].Detections) {
				t.Errorf("image %d: batch %d, err %v, detections\n%s", i, r.BatchSize, r.Err, yolotest.Format(r.Detections))
			}
		}
	})
}

// TestBatchOfDifferentImages: four calls with four different images run
// as one batch, and each gets its own image's detections (a batch of the
// same image would hide a mix-up).
func TestBatchOfDifferentImages(t *testing.T) {
	b := newBackend(t, Config{MaxBatch: 4, BatchWait: time.Second})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	imgs := busVariants(t)
	alone := detectAlone(t, b, lr.Handle, imgs)
	for i := range alone {
		for j := range i {
			if alone[j] == alone[i] {
				t.Fatalf("images %d and %d give the same detections: the test could not tell them apart", j, i)
			}
		}
	}
	var wg sync.WaitGroup
	res := make([][]backend.ImageResult, len(imgs))
	errs := make([]error, len(imgs))
	for i, img := range imgs {
		wg.Go(func() {
			res[i], errs[i] = b.Detect(context.Background(), lr.Handle, [][]byte{img}, backend.DetectParams{})
		})
	}
	wg.Wait()
	for i := range imgs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		r := res[i][0]
		if r.BatchSize != len(imgs) {
			t.Errorf("image %d ran in a batch of %d, want %d", i, r.BatchSize, len(imgs))
		}
		if got := yolotest.Format(r.Detections); got != alone[i] {
			t.Errorf("image %d in the batch:\n%s\nalone:\n%s", i, got, alone[i])
		}
	}
}

// TestConcurrentBatches: with concurrent_batches 2 a model runs a second
// batch while its first one runs (never a third), each with its own
// buffers, so every call gets its own image's detections; with 1 batches
// run one at a time.
func TestConcurrentBatches(t *testing.T) {
	imgs := busVariants(t)
	for _, lanes := range []int{1, 2} {
		t.Run(fmt.Sprintf("concurrent_batches_%d", lanes), func(t *testing.T) {
			b := newBackend(t, Config{MaxBatch: 2, ConcurrentBatches: lanes})
			lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
			alone := detectAlone(t, b, lr.Handle, imgs)
			m := b.models[lr.Handle]
			m.busyMu.Lock()
			m.peak = 0
			m.busyMu.Unlock()
			busyBefore := m.busyTime()
			// Three rounds of every image, all at once: the first batch
			// runs for tens of milliseconds, the other calls queue behind it.
			const rounds = 3
			var wg sync.WaitGroup
			res := make([][]backend.ImageResult, rounds*len(imgs))
			errs := make([]error, len(res))
			start := time.Now()
			for k := range res {
				wg.Go(func() {
					res[k], errs[k] = b.Detect(context.Background(), lr.Handle, [][]byte{imgs[k%len(imgs)]}, backend.DetectParams{})
				})
			}
			wg.Wait()
			wall := time.Since(start)
			var inferSum time.Duration
			for k := range res {
				if errs[k] != nil {
					t.Fatal(errs[k])
				}
				r := &res[k][0]
				if got := yolotest.Format(r.Detections); got != alone[k%len(imgs)] {
					t.Errorf("call %d (image %d) beside others:\n%s\nalone:\n%s", k, k%len(imgs), got, alone[k%len(imgs)])
				}
				if r.Timings.Infer <= 0 || r.Timings.Queue < 0 {
					t.Errorf("call %d: timings %+v", k, r.Timings)
				}
				inferSum += r.Timings.Infer / time.Duration(r.BatchSize) // each batch once
			}
			m.busyMu.Lock()
			peak := m.peak
			m.busyMu.Unlock()
			if peak != lanes {
				t.Errorf("at most %d batches ran at once, want %d", peak, lanes)
			}
			// Busy counts the time any batch ran, once: with one lane the
			// batches' sum, with two less (they overlapped).
			st, _ := b.Stats(context.Background())
			busy := st.Models[0].Busy - busyBefore
			if lanes == 1 && (busy-inferSum).Abs() > time.Duration(len(res))*time.Nanosecond ||
				lanes == 2 && (busy >= inferSum || busy <= 0) {
				t.Errorf("%d lanes: busy %v for batches that ran %v in all", lanes, busy, inferSum)
			}
			t.Logf("%d lanes: %d calls in %v, batches' inference %v in all, busy %v", lanes, len(res), wall, inferSum, busy)
		})
	}
}

// detectAlone runs each image in a call of its own, one after the other,
// and returns its detections as yolotest.Format writes them.
func detectAlone(t *testing.T, b *Backend, handle string, imgs [][]byte) []string {
	t.Helper()
	alone := make([]string, len(imgs))
	for i, img := range imgs {
		res, err := b.Detect(context.Background(), handle, [][]byte{img}, backend.DetectParams{})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		alone[i] = yolotest.Format(res[0].Detections)
	}
	return alone
}

// busVariants returns bus.jpg and three JPEGs made from it (mirrored, its
// left two thirds, upside down), each with detections of its own.
func busVariants(t *testing.T) [][]byte {
	t.Helper()
	bus := readTestImage(t, "bus.jpg")
	src, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := [][]byte{bus}
	enc := func(m gocv.Mat) {
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf.GetBytes()...))
		buf.Close()
	}
	flipped := func(code int) {
		f := gocv.NewMat()
		defer f.Close()
		gocv.Flip(src, &f, code)
		enc(f)
	}
	flipped(1) // mirrored
	crop := src.Region(image.Rect(0, 0, src.Cols()*2/3, src.Rows()))
	enc(crop)
	crop.Close()
	flipped(0) // upside down
	return out
}

func abs(v float32) float32 { return float32(math.Abs(float64(v))) }

// jpegClaiming returns a copy of a JPEG whose SOF header claims w x h pixels.
func jpegClaiming(t *testing.T, jpg []byte, w, h int) []byte {
	t.Helper()
	b := append([]byte(nil), jpg...)
	for i := 2; i+9 < len(b); {
		if b[i] != 0xFF {
			t.Fatalf("bad marker at %d", i)
		}
		m := b[i+1]
		if m >= 0xC0 && m <= 0xC3 { // SOF0..SOF3: length(2) precision(1) height(2) width(2)
			binary.BigEndian.PutUint16(b[i+5:], uint16(h))
			binary.BigEndian.PutUint16(b[i+7:], uint16(w))
			return b
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatal("no SOF marker")
	return nil
}

func TestBadImages(t *testing.T) {
	b := newBackend(t, Config{})
	lr := loadModel(t, b, "yolo11n_int8.onnx")
	bus := readTestImage(t, "bus.jpg")
	tiny, err := os.ReadFile(filepath.Join("testdata", "1x1.png"))
	if err != nil {
		t.Fatal(err)
	}
	tinyJPEG, err := os.ReadFile(filepath.Join("testdata", "1x1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		img       []byte
		maxPixels int64
		code      string
	}{
		{"empty", nil, 0, backend.ImageUndecodable},
		{"truncated jpeg", bus[:len(bus)/2], 0, backend.ImageUndecodable},
		{"jpeg header only", bus[:600], 0, backend.ImageUndecodable},
		{"text", []byte("hello, this is not an image\n"), 0, backend.ImageUndecodable},
		{"1x1 png", tiny, 0, backend.ImageTooSmall},
		{"1x1 jpeg", tinyJPEG, 0, backend.ImageTooSmall},
		{"claims 30000x30000", jpegClaiming(t, bus, 30000, 30000), 0, backend.ImageTooLarge},
		{"over the caller's limit", bus, 810*1080 - 1, backend.ImageTooLarge},
		{"corrupt scan data", corruptScan(bus), 0, ""},
		{"good", bus, 810 * 1080, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := b.Detect(context.Background(), lr.Handle, [][]byte{tc.img}, backend.DetectParams{MaxPixels: tc.maxPixels})
			if err != nil {
				t.Fatalf("call-level error %v, want a per-image result", err)
			}
			got := ""
			if res[0].Err != nil {
				got = res[0].Err.Code
				if res[0].Err.Message == "" {
					t.Error("empty error message")
				}
				t.Logf("%s: %v", tc.name, res[0].Err)
			}
			if tc.name == "corrupt scan data" {
				return // OpenCV may decode it with artefacts or refuse it; either is fine as long as nothing crashes
			}
			if got != tc.code {
				t.Errorf("code %q, want %q (%v)", got, tc.code, res[0].Err)
			}
		})
	}
	t.Run("bmp and webp decode", func(t *testing.T) {
		for _, f := range []string{"12x10.bmp", "12x10.webp"} {
			img, err := os.ReadFile(filepath.Join("testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			res, err := b.Detect(context.Background(), lr.Handle, [][]byte{img}, backend.DetectParams{})
			if err != nil || res[0].Err != nil || res[0].Width != 12 || res[0].Height != 10 {
				t.Errorf("%s: %v %+v", f, err, res)
			}
		}
	})
	t.Run("progressive, CMYK, rotated and mislabelled JPEGs", func(t *testing.T) {
		m, err := gocv.IMDecode(bus, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		cmyk, err := os.ReadFile(filepath.Join("..", "internal", "imaging", "testdata", "cmyk.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		rotated := imagetest.WithOrientation(bus, 6, binary.BigEndian)
		upright, err := gocv.IMDecode(rotated, gocv.IMReadColor) // OpenCV applies the orientation
		if err != nil {
			t.Fatal(err)
		}
		defer upright.Close()
		png, err := gocv.IMEncode(gocv.PNGFileExt, upright)
		if err != nil {
			t.Fatal(err)
		}
		defer png.Close()
		imgs := [][]byte{imagingtest.Encode(t, m, gocv.IMWriteJpegProgressive, 1), cmyk, rotated, png.GetBytes(), imagetest.WithSOF(bus, 0xC2)}
		res, err := b.Detect(context.Background(), lr.Handle, imgs, backend.DetectParams{})
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; r.Err != nil {
			t.Errorf("progressive: %v", r.Err)
		} else {
			yolotest.Match(t, r.Detections, yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg"))
		}
		if r := res[1]; r.Err != nil || r.Width != 64 || r.Height != 48 {
			t.Errorf("CMYK: %dx%d %v, want 64x48 decoded", r.Width, r.Height, r.Err)
		}
		if r := res[2]; r.Err != nil || r.Width != 1080 || r.Height != 810 || len(r.Detections) == 0 ||
			yolotest.Format(r.Detections) != yolotest.Format(res[3].Detections) {
			t.Errorf("EXIF orientation 6: %dx%d %v, detections\n%s\nwant those of the upright PNG\n%s", r.Width, r.Height, r.Err,
				yolotest.Format(r.Detections), yolotest.Format(res[3].Detections))
		}
		if r := res[4]; r.Err == nil || r.Err.Code != backend.ImageUndecodable {
			t.Errorf("baseline data under a progressive header: %+v, want undecodable", r.Err)
		}
	})
	t.Run("mixed batch in one call", func(t *testing.T) {
		res, err := b.Detect(context.Background(), lr.Handle, [][]byte{nil, bus, []byte("text")}, backend.DetectParams{})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err == nil || res[1].Err != nil || res[2].Err == nil || len(res[1].Detections) == 0 {
			t.Errorf("results %+v", res)
		}
	})
}

// corruptScan overwrites a stretch of a JPEG's entropy-coded data.
func corruptScan(jpg []byte) []byte {
	b := append([]byte(nil), jpg...)
	for i := len(b) / 2; i < len(b)/2+2000; i++ {
		b[i] = 0x55
	}
	return b
}

func TestCallErrors(t *testing.T) {
	b := newBackend(t, Config{})
	bus := readTestImage(t, "bus.jpg")
	if _, err := b.Detect(context.Background(), "nope", [][]byte{bus}, backend.DetectParams{}); !errors.Is(err, backend.ErrUnknownHandle) {
		t.Errorf("unknown handle: %v", err)
	}
	if err := b.Unload(context.Background(), "nope"); !errors.Is(err, backend.ErrUnknownHandle) {
		t.Errorf("unload unknown handle: %v", err)
	}
	for name, data := range map[string][]byte{"empty": nil, "garbage": []byte("not an onnx model at all")} {
		if _, err := b.Load(context.Background(), model.Descriptor{Name: "x"}, data); !errors.Is(err, backend.ErrBadModel) {
			t.Errorf("load %s: %v, want ErrBadModel", name, err)
		}
	}
	data, _ := os.ReadFile(testenv.Model(t, "yolo11n_int8.onnx"))
	if _, err := b.Load(context.Background(), model.Descriptor{Name: "x", InputWidth: 320, InputHeight: 320}, data); !errors.Is(err, backend.ErrBadModel) || !strings.Contains(err.Error(), "contradicts") {
		t.Errorf("contradicting descriptor: %v", err)
	}
	if _, err := b.Load(context.Background(), model.Descriptor{Name: "x", Format: model.FormatRKNN}, data); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("rknn format: %v", err)
	}
	lr, err := b.Load(context.Background(), model.Descriptor{Name: "sidecar", Classes: []string{"a"}}, data)
	if err == nil || !errors.Is(err, backend.ErrBadModel) {
		t.Errorf("1 class name for 80 classes: %v, %+v", err, lr)
	}
	lr = loadModel(t, b, "yolo11n_int8.onnx")
	if _, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{Params: yolo.Params{Conf: 2}}); err == nil {
		t.Error("conf 2: want an error")
	}
	res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{Params: yolo.Params{Classes: []int{5}, MaxDet: 1}})
	if err != nil || len(res[0].Detections) != 1 || res[0].Detections[0].ClassID != 5 {
		t.Errorf("classes [5] max_det 1: %v %+v", err, res)
	}
	if err := b.Unload(context.Background(), lr.Handle); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{}); !errors.Is(err, backend.ErrUnknownHandle) {
		t.Errorf("detect after unload: %v", err)
	}
}

func TestCancelledRequestLeavesTheQueue(t *testing.T) {
	b := newBackend(t, Config{MaxBatch: 4})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	bus := readTestImage(t, "bus.jpg")
	busy := make(chan error, 1)
	go func() { // keeps the runner busy with a batch of 4
		_, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus, bus, bus, bus}, backend.DetectParams{})
		busy <- err
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Detect(ctx, lr.Handle, [][]byte{bus}, backend.DetectParams{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("the cancelled call got %v after %v (the runner may have taken it already)", err, time.Since(start))
	}
	res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
	if err != nil || res[0].Err != nil || len(res[0].Detections) == 0 {
		t.Fatalf("request after a cancelled one: %v %+v", err, res)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if err := b.Health(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestProviders(t *testing.T) {
	lib := testenv.ORTLib(t)
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_cuda.so")); err == nil {
		t.Log("this library has the CUDA provider; only the fallback is tested")
	} else {
		_, err := New(Config{Library: lib, Providers: []string{ProviderCUDA}}, nil)
		if !errors.Is(err, backend.ErrUnsupported) || !strings.Contains(err.Error(), "execution provider cuda is not available in "+lib) {
			t.Errorf("cuda without fallback: %v, want ErrUnsupported naming the provider and library", err)
		} else {
			t.Log(err)
		}
	}
	b := newBackend(t, Config{Providers: []string{ProviderCUDA, ProviderCPU}, FallbackCPU: true})
	lr := loadModel(t, b, "yolo11n_int8.onnx")
	res, err := b.Detect(context.Background(), lr.Handle, [][]byte{readTestImage(t, "bus.jpg")}, backend.DetectParams{})
	if err != nil {
		t.Fatal(err)
	}
	yolotest.Match(t, res[0].Detections, yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg"))
	info, err := b.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != Name || len(info.Devices) == 0 || info.Devices[0].Kind != backend.DeviceCPU || info.Devices[0].MemoryTotal == 0 ||
		len(info.Formats) != 1 || info.Formats[0] != model.FormatONNX || info.Providers[len(info.Providers)-1] != ProviderCPU {
		t.Errorf("info %+v", info)
	}
	t.Logf("info %+v", info)
}
