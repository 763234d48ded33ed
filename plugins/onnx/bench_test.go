package onnx

import (
	"bufio"
	"context"
	"errors"
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
	b.ReportMetric(quantileMS(lat, 0.50), "p50_ms")
	b.ReportMetric(quantileMS(lat, 0.99), "p99_ms")
}

// quantileMS is the p-quantile of sorted latencies, in milliseconds.
func quantileMS(sorted []time.Duration, p float64) float64 {
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Microseconds()) / 1000
}

// bareSession is the ONNX Runtime session alone: the benchmark model with
// the session options the plugin serves with, and one input (bus.jpg's
// letterbox in every slot) and output tensor per batch size and caller.
type bareSession struct {
	sess     *ort.DynamicAdvancedSession
	opts     *ort.SessionOptions
	fixed    int64 // the model's batch size, 0 when dynamic
	mu       sync.Mutex
	in, out  map[bareSlot]*ort.Tensor[float32]
	h, w     int64
	per      int
	plane    []float32
	outShape [2]int64
	inName   string
	outName  string
	// threaded: runs go through a run thread per caller (ortcall.go), as
	// the plugin runs them, instead of sess.Run's cgo call.
	threaded bool
	threads  map[int]*runThread
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
	s := &bareSession{sess: sess, opts: opts, fixed: max(sh.batch, 0), in: map[bareSlot]*ort.Tensor[float32]{},
		out: map[bareSlot]*ort.Tensor[float32]{}, h: sh.h, w: sh.w, outShape: [2]int64{sh.out[1], sh.out[2]},
		inName: sh.inName, outName: sh.outName, threads: map[int]*runThread{}}
	if s.h <= 0 || s.w <= 0 {
		s.h, s.w = 640, 640
	}
	s.per = int(3 * s.h * s.w)
	s.plane = imagingtest.ReadF32(b, testenv.Model(b, "images/bus.jpg.640.f32"))
	return s
}

// supports reports whether the model runs at batch size bs.
func (s *bareSession) supports(bs int64) bool { return s.fixed == 0 || s.fixed == bs }

// bareSlot names the tensors of one batch size and caller.
type bareSlot struct {
	bs     int64
	caller int
}

// run runs the session once at batch size bs with the tensors of caller
// (made on first use); callers run at once.
func (s *bareSession) run(bs int64, caller int) error {
	k := bareSlot{bs, caller}
	s.mu.Lock()
	in, ok := s.in[k]
	if !ok {
		var err error
		if in, err = ort.NewEmptyTensor[float32](ort.NewShape(bs, 3, s.h, s.w)); err != nil {
			s.mu.Unlock()
			return err
		}
		s.in[k] = in
		for i := range int(bs) {
			if len(s.plane) == s.per {
				copy(in.GetData()[i*s.per:], s.plane)
			}
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(bs, s.outShape[0], s.outShape[1]))
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.out[k] = out
	}
	out := s.out[k]
	if !s.threaded {
		s.mu.Unlock()
		return s.sess.Run([]ort.Value{in}, []ort.Value{out})
	}
	rt, ok := s.threads[caller]
	if !ok {
		var err error
		if rt, err = newRunThread(s.sess, s.inName, s.outName); err != nil {
			s.mu.Unlock()
			return err
		}
		s.threads[caller] = rt
	}
	s.mu.Unlock()
	return rt.run(in, out)
}

// runs runs the session n times at batch size bs, spread over callers
// running at once, and returns each run's duration and the time for all.
func (s *bareSession) runs(bs int64, n, callers int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += callers {
				t0 := time.Now()
				if errs[c] = s.run(bs, c); errs[c] != nil {
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), errors.Join(errs...)
}

func (s *bareSession) close() {
	for _, m := range []map[bareSlot]*ort.Tensor[float32]{s.in, s.out} {
		for _, t := range m {
			t.Destroy()
		}
	}
	for _, rt := range s.threads {
		rt.close()
	}
	s.sess.Destroy()
	s.opts.Destroy()
}

// BenchmarkModelOnly runs the ONNX Runtime session alone (same session
// options as served; input already preprocessed; no post-processing) at
// batch 1 and 4 (batch 4 only on dynamic-batch models), and as the plugin
// runs a busy model: two batch-1 runs at once (batch1x2). One op is one
// batch. batch1_thread runs batch 1 as the plugin does, from a thread of
// its own (ortcall.go), in turns of 5 with batch1's plain cgo call (what the
// daemon's benchmark compares with): p50_ms is the thread's, direct_p50_ms
// the cgo call's, ratio the first over the second.
func BenchmarkModelOnly(b *testing.B) {
	s := newBareSession(b)
	defer s.close()
	for _, c := range []struct {
		bs      int64
		callers int
	}{{1, 1}, {4, 1}, {1, 2}} {
		if !s.supports(c.bs) {
			continue
		}
		name := fmt.Sprintf("batch%d", c.bs)
		if c.callers > 1 {
			name += fmt.Sprintf("x%d", c.callers)
		}
		b.Run(name, func(b *testing.B) {
			if _, _, err := s.runs(c.bs, c.callers, c.callers); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			lat, elapsed, err := s.runs(c.bs, b.N, c.callers)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			reportLatency(b, b.N*int(c.bs), elapsed, lat)
		})
	}
	b.Run("batch1_thread", func(b *testing.B) {
		var direct, thread []time.Duration
		for i := 0; i < b.N+5; i += 5 { // the first turn warms the thread up
			for _, threaded := range []bool{false, true} {
				s.threaded = threaded
				lat, _, err := s.runs(1, 5, 1)
				s.threaded = false
				if err != nil {
					b.Fatal(err)
				}
				if i > 0 && threaded {
					thread = append(thread, lat...)
				} else if i > 0 {
					direct = append(direct, lat...)
				}
			}
		}
		slices.Sort(thread)
		slices.Sort(direct)
		t50, d50 := quantileMS(thread, 0.5), quantileMS(direct, 0.5)
		b.ReportMetric(t50, "p50_ms")
		b.ReportMetric(d50, "direct_p50_ms")
		b.ReportMetric(t50/d50, "ratio")
	})
}

// BenchmarkModelOnlyServe is the model-only side of the daemon's paired
// benchmark (daemon BenchmarkHTTPDetect with AZAION_BENCH_PAIRED): the
// session of BenchmarkModelOnly, run on request so that the two measure
// side by side, in turns of a second or so, on a machine whose speed
// drifts. It reads lines "batch count [callers]" on stdin, runs the session
// count times at that batch size, spread over callers running at once
// (default 1), and answers each line on file descriptor 3 with the time
// for all of them and then each run's duration, in nanoseconds,
// space-separated ("error: ..." when it cannot); it returns at the end of
// stdin. Without that pipe it has nothing to do and says so.
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
		var answer strings.Builder
		bs, n, callers, err := parseServeRequest(in.Text())
		if err == nil && !s.supports(bs) {
			err = fmt.Errorf("the model does not run at batch size %d", bs)
		}
		var lat []time.Duration
		var all time.Duration
		if err == nil {
			lat, all, err = s.runs(bs, n, callers)
		}
		if err != nil {
			fmt.Fprintf(&answer, "error: %v", err)
		} else {
			fmt.Fprint(&answer, all.Nanoseconds())
			for _, d := range lat {
				fmt.Fprint(&answer, " ", d.Nanoseconds())
			}
		}
		if _, err := fmt.Fprintln(reply, answer.String()); err != nil {
			b.Fatal(err)
		}
	}
}

// parseServeRequest reads BenchmarkModelOnlyServe's "batch count [callers]".
func parseServeRequest(line string) (bs int64, n, callers int, err error) {
	f := strings.Fields(line)
	callers = 1
	if len(f) == 2 || len(f) == 3 {
		_, err = fmt.Sscan(line, &bs, &n)
		if err == nil && len(f) == 3 {
			_, err = fmt.Sscan(f[2], &callers)
		}
	}
	if len(f) < 2 || len(f) > 3 || err != nil || bs < 1 || n < 1 || callers < 1 || callers > 16 {
		return 0, 0, 0, fmt.Errorf("bad request %q (want a batch size, a count and optionally 1..16 callers)", line)
	}
	return bs, n, callers, nil
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
