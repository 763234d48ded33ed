// Package conformance is the test suite every inference backend runs (DESIGN.md
// section 4): load from memory, detect on the shared test models against their
// references, batching, unload, bad input and cancellation, and DetectVideo on
// clips made with ffmpeg and on a real RTSP server (internal/videotest). A
// backend's tests call Run with a constructor; the daemon-side gRPC path is
// covered by running the same suite through backend.Client (see OverGRPC).
// Imported only by tests.
package conformance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/yolo"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// Options say what to test.
type Options struct {
	// Backend returns the backend under test (shared by all subtests).
	Backend backend.Backend
	// Models is the folder of shared test models (../shared/models).
	Models string
	// Format is the model format the backend loads (onnx).
	Format string
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t *testing.T, o Options, file, name string) *backend.LoadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := o.Backend.Load(ctx, model.Descriptor{Name: name, Format: o.Format}, readFile(t, o.Models, file))
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	t.Cleanup(func() { _ = o.Backend.Unload(context.Background(), res.Handle) })
	return res
}

var params = backend.DetectParams{Params: yolo.Params{Conf: 0.25, IoU: 0.45, MaxDet: 300}, MaxPixels: 100_000_000}

// Run runs the whole suite.
func Run(t *testing.T, o Options) {
	ctx := context.Background()
	bus := readFile(t, o.Models, "images/bus.jpg")

	t.Run("Info", func(t *testing.T) {
		info, err := o.Backend.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, v := range info.APIVersions {
			found = found || v == backend.APIVersion
		}
		if !found || info.Name == "" || len(info.Devices) == 0 || len(info.Formats) == 0 {
			t.Fatalf("info %+v: want a name, %s, devices and formats", info, backend.APIVersion)
		}
		if err := o.Backend.Health(ctx); err != nil {
			t.Fatalf("health: %v", err)
		}
	})

	for _, tc := range []struct{ file, ref string }{
		{"yolo11n_int8.onnx", "yolo11n_int8.ref.json"},
		{"yolo11n_int8_nms.onnx", "yolo11n_int8_nms.ref.json"},
	} {
		t.Run("Detect/"+tc.file, func(t *testing.T) {
			res := load(t, o, tc.file, "m")
			if res.Descriptor.InputWidth != 640 || len(res.Descriptor.Classes) != 80 {
				t.Fatalf("resolved descriptor %+v: want 640 input and 80 classes from the model", res.Descriptor)
			}
			out, err := o.Backend.Detect(ctx, res.Handle, [][]byte{bus}, params)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || out[0].Err != nil {
				t.Fatalf("results %+v", out)
			}
			if out[0].Width != 810 || out[0].Height != 1080 {
				t.Fatalf("image size %dx%d, want 810x1080", out[0].Width, out[0].Height)
			}
			yolotest.Match(t, out[0].Detections, yolotest.Load(t, filepath.Join(o.Models, tc.ref), "bus.jpg"))
		})
	}

	t.Run("Batch", func(t *testing.T) {
		res := load(t, o, "yolo11n_dequant_fp32.onnx", "dyn")
		ref := yolotest.Load(t, filepath.Join(o.Models, "yolo11n_dequant_fp32.ref.json"), "bus.jpg")
		out, err := o.Backend.Detect(ctx, res.Handle, [][]byte{bus, bus, bus, bus}, params)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 4 {
			t.Fatalf("%d results for 4 images", len(out))
		}
		for i, r := range out {
			if r.Err != nil {
				t.Fatalf("image %d: %v", i, r.Err)
			}
			yolotest.Match(t, r.Detections, ref)
			if yolotest.Format(r.Detections) != yolotest.Format(out[0].Detections) {
				t.Fatalf("image %d differs from image 0 in the same batch", i)
			}
		}
		// Concurrent single-image calls give the same as one alone.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		got := make([][]backend.ImageResult, 4)
		for i := range 4 {
			wg.Go(func() { got[i], errs[i] = o.Backend.Detect(ctx, res.Handle, [][]byte{bus}, params) })
		}
		wg.Wait()
		for i := range 4 {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if yolotest.Format(got[i][0].Detections) != yolotest.Format(out[0].Detections) {
				t.Fatalf("concurrent call %d differs", i)
			}
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "bad")
		cases := map[string][]byte{
			"empty":     {},
			"text":      []byte("hello, this is not an image\n"),
			"truncated": bus[:len(bus)/3],
		}
		for name, img := range cases {
			out, err := o.Backend.Detect(ctx, res.Handle, [][]byte{img, bus}, params)
			if err != nil {
				t.Fatalf("%s: call failed as a whole: %v", name, err)
			}
			if name != "truncated" && out[0].Err == nil {
				t.Errorf("%s: no image error", name)
			}
			if out[1].Err != nil || len(out[1].Detections) == 0 {
				t.Errorf("%s: the good image beside it failed: %+v", name, out[1].Err)
			}
		}
	})

	t.Run("BadModel", func(t *testing.T) {
		_, err := o.Backend.Load(ctx, model.Descriptor{Name: "junk", Format: o.Format}, []byte("not a model at all"))
		if !errors.Is(err, backend.ErrBadModel) {
			t.Fatalf("load junk: %v, want ErrBadModel", err)
		}
	})

	t.Run("Unload", func(t *testing.T) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err := o.Backend.Load(lctx, model.Descriptor{Name: "u", Format: o.Format}, readFile(t, o.Models, "yolo11n_int8.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Backend.Unload(ctx, res.Handle); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Backend.Detect(ctx, res.Handle, [][]byte{bus}, params); !errors.Is(err, backend.ErrUnknownHandle) {
			t.Fatalf("detect after unload: %v, want ErrUnknownHandle", err)
		}
		if err := o.Backend.Unload(ctx, res.Handle); !errors.Is(err, backend.ErrUnknownHandle) {
			t.Fatalf("second unload: %v, want ErrUnknownHandle", err)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		res := load(t, o, "yolo11n_int8.onnx", "c")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := o.Backend.Detect(cctx, res.Handle, [][]byte{bus}, params); !errors.Is(err, context.Canceled) {
			t.Fatalf("detect with a cancelled context: %v, want context.Canceled", err)
		}
		// The backend still serves afterwards.
		out, err := o.Backend.Detect(ctx, res.Handle, [][]byte{bus}, params)
		if err != nil || out[0].Err != nil || len(out[0].Detections) == 0 {
			t.Fatalf("detect after a cancelled one: %v %+v", err, out)
		}
	})

	runVideo(t, o)
}
