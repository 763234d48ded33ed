package onnx

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/plugins/internal/imaging"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
	"github.com/azaion/edge/sdk/backend"
)

// TestTimingsUnderOverlap: with four callers keeping the runtime busy while
// the decode pool prepares the next batch, every image's stages (queue,
// decode, preprocess, infer, post) are positive where they must be and add
// up to no more than the call's own latency: nothing is counted twice,
// although decoding overlaps inference.
func TestTimingsUnderOverlap(t *testing.T) {
	b := newBackend(t, Config{MaxBatch: 4})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	bus := imagingtest.Bus(t)
	var (
		mu      sync.Mutex
		batches = map[int]int{}
		wg      sync.WaitGroup
	)
	for c := range 4 {
		wg.Go(func() {
			for range 4 {
				t0 := time.Now()
				res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
				lat := time.Since(t0)
				if err != nil || res[0].Err != nil {
					t.Errorf("caller %d: %v %v", c, err, res[0].Err)
					return
				}
				tm := res[0].Timings
				sum := tm.Queue + tm.Decode + tm.Preprocess + tm.Infer + tm.Post
				if tm.Queue < 0 || tm.Decode <= 0 || tm.Preprocess <= 0 || tm.Infer <= 0 || tm.Post <= 0 || sum > lat {
					t.Errorf("caller %d: stages %+v add up to %v, over the call's %v (or one is not positive)", c, tm, sum, lat)
				}
				mu.Lock()
				batches[res[0].BatchSize]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("batch sizes seen: %v", batches)
	st, _ := b.Stats(context.Background())
	if m := st.Models[0]; m.Images != 16 || m.Batches == 16 {
		t.Errorf("stats %+v: want 16 images in fewer than 16 batches (callers overlap)", m)
	}
}

// TestLoneImageParallelDecode: an image that arrives while nothing else
// decodes or runs in the plugin is decoded on two threads (its latency);
// the detections are those of the one-thread decode (TestDetectMatchesReference
// checks them against the reference through the same path).
func TestLoneImageParallelDecode(t *testing.T) {
	b := newBackend(t, Config{})
	lr := loadModel(t, b, "yolo11n_dequant_fp32.onnx")
	bus := imagingtest.Bus(t)
	before := imaging.ParallelDecodes()
	res, err := b.Detect(context.Background(), lr.Handle, [][]byte{bus}, backend.DetectParams{})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	if got := imaging.ParallelDecodes() - before; got != 1 {
		t.Errorf("a lone bus.jpg: %d parallel decodes, want 1", got)
	}
	if len(res[0].Detections) == 0 {
		t.Error("no detections")
	}
}
