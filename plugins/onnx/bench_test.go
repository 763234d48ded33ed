package onnx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/pluginconfig"
)

// Benchmarks for bench/inference.sh. Both read the plugin configuration from
// AZAION_PLUGIN_CONFIG (so they run with the threads the daemon serves with),
// the model from AZAION_BENCH_MODEL (default yolo11n_dequant_fp32.onnx) and
// the image from AZAION_BENCH_IMAGE (default bus.jpg). Each reports images/s,
// p50_ms and p99_ms; BenchmarkDetect adds the mean per-stage split.
//
//	go test -run '^$' -bench 'ModelOnly|Detect' -benchtime 40x ./plugins/onnx

func benchConfig(b *testing.B) Config {
	cfg, err := ConfigFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	if !strings.Contains(os.Getenv(pluginconfig.Env), `"library"`) {
		cfg.Library = testenv.ORTLib(b)
	}
	return cfg
}

func benchModel(b *testing.B) (string, []byte) {
	p := os.Getenv("AZAION_BENCH_MODEL")
	if p == "" {
		p = testenv.Model(b, "yolo11n_dequant_fp32.onnx")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSuffix(filepath.Base(p), ".onnx"), data
}

func benchImage(b *testing.B) []byte {
	p := os.Getenv("AZAION_BENCH_IMAGE")
	if p == "" {
		p = testenv.Model(b, "images/bus.jpg")
	}
	img, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// reportLatency reports images/s and the p50/p99 of per-operation latencies.
func reportLatency(b *testing.B, images int, elapsed time.Duration, lat []time.Duration) {
	b.ReportMetric(float64(images)/elapsed.Seconds(), "images/s")
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// BenchmarkModelOnly runs the ONNX Runtime session alone (same session
// options as served; input already preprocessed; no post-processing) at
// batch 1 and 4 (batch 4 only on dynamic-batch models). One op is one batch.
func BenchmarkModelOnly(b *testing.B) {
	cfg := benchConfig(b)
	if _, err := New(cfg, nil); err != nil {
		b.Fatal(err)
	}
	_, data := benchModel(b)
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		b.Fatal(err)
	}
	sh, err := inspectShape(ins, outs)
	if err != nil {
		b.Fatal(err)
	}
	opts, _, err := sessionOptions(cfg.WithDefaults(), map[string]error{})
	if err != nil {
		b.Fatal(err)
	}
	defer opts.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{sh.inName}, []string{sh.outName}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Destroy()
	h, w := sh.h, sh.w
	if h <= 0 || w <= 0 {
		h, w = 640, 640
	}
	plane := imagingtest.ReadF32(b, testenv.Model(b, "images/bus.jpg.640.f32"))
	for _, bs := range []int64{1, 4} {
		if sh.batch > 0 && sh.batch != bs {
			continue
		}
		b.Run(fmt.Sprintf("batch%d", bs), func(b *testing.B) {
			in, err := ort.NewEmptyTensor[float32](ort.NewShape(bs, 3, h, w))
			if err != nil {
				b.Fatal(err)
			}
			defer in.Destroy()
			per := int(3 * h * w)
			for i := range int(bs) {
				if len(plane) == per {
					copy(in.GetData()[i*per:], plane)
				}
			}
			out, err := ort.NewEmptyTensor[float32](ort.NewShape(bs, sh.out[1], sh.out[2]))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Destroy()
			if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil { // warm-up
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				t0 := time.Now()
				if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			reportLatency(b, b.N*int(bs), elapsed, lat)
		})
	}
}

// BenchmarkDetect runs Detect end to end from JPEG bytes (decode,
// letterbox, queue and batching, inference, post-processing) with 1 and 4
// concurrent callers. One op is one image.
func BenchmarkDetect(b *testing.B) {
	cfg := benchConfig(b)
	be, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	name, data := benchModel(b)
	lr, err := be.Load(context.Background(), model.Descriptor{Name: name}, data)
	if err != nil {
		b.Fatal(err)
	}
	img := benchImage(b)
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			var (
				mu    sync.Mutex
				lat   []time.Duration
				sum   backend.Timings
				batch int
				next  atomic.Int64
				wg    sync.WaitGroup
				errs  = make(chan error, conc)
			)
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						res, err := be.Detect(context.Background(), lr.Handle, [][]byte{img}, backend.DetectParams{})
						d := time.Since(t0)
						if err == nil && res[0].Err != nil {
							err = res[0].Err
						}
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						lat = append(lat, d)
						t := res[0].Timings
						sum.Decode += t.Decode
						sum.Preprocess += t.Preprocess
						sum.Queue += t.Queue
						sum.Infer += t.Infer
						sum.Post += t.Post
						batch += res[0].BatchSize
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			reportLatency(b, b.N, elapsed, lat)
			n := float64(len(lat))
			ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / n }
			b.ReportMetric(ms(sum.Decode), "decode_ms")
			b.ReportMetric(ms(sum.Preprocess), "preprocess_ms")
			b.ReportMetric(ms(sum.Queue), "queue_ms")
			b.ReportMetric(ms(sum.Infer), "infer_ms")
			b.ReportMetric(ms(sum.Post), "post_ms")
			b.ReportMetric(float64(batch)/n, "batch")
		})
	}
}
