package onnx

import (
	"bufio"
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

// bareSession is the ONNX Runtime session alone: the benchmark model with
// the session options the plugin serves with, and one input (bus.jpg's
// letterbox in every slot) and output tensor per batch size.
type bareSession struct {
	sess     *ort.DynamicAdvancedSession
	opts     *ort.SessionOptions
	fixed    int64 // the model's batch size, 0 when dynamic
	in, out  map[int64]*ort.Tensor[float32]
	h, w     int64
	per      int
	plane    []float32
	outShape [2]int64
}

func newBareSession(b *testing.B) *bareSession {
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
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{sh.inName}, []string{sh.outName}, opts)
	if err != nil {
		opts.Destroy()
		b.Fatal(err)
	}
	s := &bareSession{sess: sess, opts: opts, fixed: max(sh.batch, 0), in: map[int64]*ort.Tensor[float32]{},
		out: map[int64]*ort.Tensor[float32]{}, h: sh.h, w: sh.w, outShape: [2]int64{sh.out[1], sh.out[2]}}
	if s.h <= 0 || s.w <= 0 {
		s.h, s.w = 640, 640
	}
	s.per = int(3 * s.h * s.w)
	s.plane = imagingtest.ReadF32(b, testenv.Model(b, "images/bus.jpg.640.f32"))
	return s
}

// supports reports whether the model runs at batch size bs.
func (s *bareSession) supports(bs int64) bool { return s.fixed == 0 || s.fixed == bs }

// run runs the session once at batch size bs (tensors made on first use).
func (s *bareSession) run(bs int64) error {
	in, ok := s.in[bs]
	if !ok {
		var err error
		if in, err = ort.NewEmptyTensor[float32](ort.NewShape(bs, 3, s.h, s.w)); err != nil {
			return err
		}
		s.in[bs] = in
		for i := range int(bs) {
			if len(s.plane) == s.per {
				copy(in.GetData()[i*s.per:], s.plane)
			}
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(bs, s.outShape[0], s.outShape[1]))
		if err != nil {
			return err
		}
		s.out[bs] = out
	}
	return s.sess.Run([]ort.Value{in}, []ort.Value{s.out[bs]})
}

func (s *bareSession) close() {
	for _, m := range []map[int64]*ort.Tensor[float32]{s.in, s.out} {
		for _, t := range m {
			t.Destroy()
		}
	}
	s.sess.Destroy()
	s.opts.Destroy()
}

// BenchmarkModelOnly runs the ONNX Runtime session alone (same session
// options as served; input already preprocessed; no post-processing) at
// batch 1 and 4 (batch 4 only on dynamic-batch models). One op is one batch.
func BenchmarkModelOnly(b *testing.B) {
	s := newBareSession(b)
	defer s.close()
	for _, bs := range []int64{1, 4} {
		if !s.supports(bs) {
			continue
		}
		b.Run(fmt.Sprintf("batch%d", bs), func(b *testing.B) {
			if err := s.run(bs); err != nil { // warm-up
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				t0 := time.Now()
				if err := s.run(bs); err != nil {
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

// BenchmarkModelOnlyServe is the model-only side of the daemon's paired
// benchmark (daemon BenchmarkHTTPDetect with AZAION_BENCH_PAIRED): the
// session of BenchmarkModelOnly, run on request so that the two measure
// side by side, in turns of a second or so, on a machine whose speed
// drifts. It reads lines "batch count" on stdin, runs the session count
// times at that batch size and answers each line on file descriptor 3
// with the count durations in nanoseconds, space-separated ("error: ..."
// when it cannot); it returns at the end of stdin. Without that pipe it
// has nothing to do and says so.
//
//	onnx.test -test.run '^$' -test.bench '^BenchmarkModelOnlyServe$' -test.benchtime 1x 3>reply
func BenchmarkModelOnlyServe(b *testing.B) {
	reply := os.NewFile(3, "reply")
	if _, err := reply.Stat(); err != nil {
		b.Skip("no reply pipe on fd 3: run by the daemon's BenchmarkHTTPDetect with AZAION_BENCH_PAIRED")
	}
	s := newBareSession(b)
	defer s.close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var bs int64
		var n int
		var answer strings.Builder
		if _, err := fmt.Sscan(in.Text(), &bs, &n); err != nil || n < 1 || !s.supports(bs) {
			fmt.Fprintf(&answer, "error: bad request %q (want a batch size the model takes and a count)", in.Text())
		} else {
			for i := range n {
				t0 := time.Now()
				if err := s.run(bs); err != nil {
					answer.Reset()
					fmt.Fprintf(&answer, "error: %v", err)
					break
				}
				if i > 0 {
					answer.WriteByte(' ')
				}
				fmt.Fprint(&answer, time.Since(t0).Nanoseconds())
			}
		}
		if _, err := fmt.Fprintln(reply, answer.String()); err != nil {
			b.Fatal(err)
		}
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
