package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/pluginconfig"
)

// BenchmarkHTTPDetect measures end-to-end detection through the daemon: a
// JPEG POSTed over loopback HTTP to the JSON answer, with the real ONNX
// plugin, at 1 and 4 concurrent clients. One op is one image. It reports
// images/s, p50/p99 latency and the mean per-stage split (decode,
// preprocess, queue, infer, post as the daemon reports them; transport is
// the client-measured latency minus the daemon's total; overhead is the
// daemon's total minus those stages: reading the body, the hop to the
// plugin and back, the JSON answer).
//
// With AZAION_BENCH_PAIRED set to plugins/onnx's test binary, the bare
// runtime is measured side by side (BenchmarkModelOnlyServe in a process
// of its own, same model and plugin configuration): the images go in
// turns of 5 (concurrency 1) or 60 (concurrency 4), each followed by as
// many images through the session alone, at batch 1 (concurrency 1) or at
// batch 4 and 1 and as two batch-1 runs at once (concurrency 4), so that
// both see the same machine, whose speed drifts. It then also reports
// model_p50_ms (batch 1) or model_images/s (the better of batch 1 and 4,
// model_batch), and ratio: p50 over model_p50 at concurrency 1, images/s
// over model_images/s at 4. At 4 it adds model_x2_images/s (two runs at
// once, as the plugin runs a busy model) and ratio_x2 against it.
// bench/inference.sh runs it so and prints the ratios.
//
// AZAION_BENCH_MODEL names a shared test model (default yolo11n_dequant_fp32.onnx);
// AZAION_BENCH_IMAGE is the image file to send (default bus.jpg);
// AZAION_ONNX_THREADS, AZAION_ONNX_DECODE_THREADS, AZAION_ONNX_DECODE_PRIORITY,
// AZAION_ONNX_CONCURRENT_BATCHES and AZAION_ONNX_SPINNING=1 change the served
// threads.
func BenchmarkHTTPDetect(b *testing.B) {
	name := os.Getenv("AZAION_BENCH_MODEL")
	if name == "" {
		name = "yolo11n_dequant_fp32.onnx"
	}
	h := startDaemon(b, []string{name}, func(c *config.Config) {
		c.Log.Level = "error"
		if v := os.Getenv("AZAION_ONNX_THREADS"); v != "" {
			fmt.Sscan(v, &c.ONNX.IntraOpThreads)
		}
		if v := os.Getenv("AZAION_ONNX_DECODE_THREADS"); v != "" {
			fmt.Sscan(v, &c.ONNX.DecodeThreads)
		}
		c.ONNX.Spinning = os.Getenv("AZAION_ONNX_SPINNING") == "1"
		if v := os.Getenv("AZAION_ONNX_DECODE_PRIORITY"); v != "" {
			c.ONNX.DecodePriority = v
		}
		if v := os.Getenv("AZAION_ONNX_CONCURRENT_BATCHES"); v != "" {
			fmt.Sscan(v, &c.ONNX.ConcurrentBatches)
		}
	})
	img := busJPEG(b)
	if p := os.Getenv("AZAION_BENCH_IMAGE"); p != "" {
		var err error
		if img, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	var bare *modelOnly
	if bin := os.Getenv("AZAION_BENCH_PAIRED"); bin != "" {
		bare = startModelOnly(b, bin, h.cfg, name)
	}
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			// Warm the connections and the model.
			for range conc {
				if _, err := h.http.Detect(context.Background(), img, api.DetectOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			var (
				st      detectStats
				elapsed time.Duration
				model   = map[int]*bareRuns{1: {}, 4: {}}
				twice   bareRuns // batch 1, two runs at once
			)
			// Paired: turns of 5 images at concurrency 1; at 4, turns of
			// 60, so that the pipeline filling at the start of each (four
			// images decoded while the runtime waits for the first batch)
			// and draining at its end weigh little against its steady state.
			turn := b.N
			if bare != nil {
				turn = 5
				if conc > 1 {
					turn = 15 * conc
				}
			}
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(turn, b.N-done)
				elapsed += st.detect(b, h, img, conc, k)
				done += k
				if bare == nil {
					continue
				}
				b.StopTimer()
				if conc == 1 {
					model[1].add(b, bare, 1, k, 1)
				} else {
					model[4].add(b, bare, 4, max(1, k/4), 1)
					model[1].add(b, bare, 1, max(1, k/4), 1)
					twice.add(b, bare, 1, max(2, k/4), 2)
				}
				b.StartTimer()
			}
			b.StopTimer()
			n := float64(len(st.lat))
			slices.Sort(st.lat)
			p50 := pct(st.lat, 0.50)
			b.ReportMetric(n/elapsed.Seconds(), "images/s")
			b.ReportMetric(p50, "p50_ms")
			b.ReportMetric(pct(st.lat, 0.99), "p99_ms")
			b.ReportMetric(st.sum.Decode/n, "decode_ms")
			b.ReportMetric(st.sum.Preprocess/n, "preprocess_ms")
			b.ReportMetric(st.sum.Queue/n, "queue_ms")
			b.ReportMetric(st.sum.Infer/n, "infer_ms")
			slices.Sort(st.infer)
			b.ReportMetric(st.infer[len(st.infer)/2], "infer_p50_ms")
			b.ReportMetric(st.sum.Postprocess/n, "post_ms")
			b.ReportMetric(st.trans/n, "transport_ms")
			b.ReportMetric(st.hop/n, "overhead_ms")
			b.ReportMetric(float64(st.batch)/n, "batch")
			switch {
			case bare == nil:
			case conc == 1:
				m := model[1].p50()
				b.ReportMetric(m, "model_p50_ms")
				b.ReportMetric(p50/m, "ratio")
			default:
				best := 4
				if model[1].rate() > model[4].rate() {
					best = 1
				}
				b.ReportMetric(model[best].rate(), "model_images/s")
				b.ReportMetric(float64(best), "model_batch")
				b.ReportMetric(n/elapsed.Seconds()/model[best].rate(), "ratio")
				b.ReportMetric(twice.rate(), "model_x2_images/s")
				b.ReportMetric(n/elapsed.Seconds()/twice.rate(), "ratio_x2")
			}
		})
	}
}

// pct is the p-quantile of sorted durations, in milliseconds.
func pct(lat []time.Duration, p float64) float64 {
	return api.MS(lat[min(len(lat)-1, int(p*float64(len(lat))))])
}

// detectStats gathers what the clients of BenchmarkHTTPDetect saw.
type detectStats struct {
	mu    sync.Mutex
	lat   []time.Duration
	infer []float64 // the infer stage of each image, ms
	sum   api.TimingsMS
	trans float64
	hop   float64
	batch int
}

// detect sends n images from conc concurrent clients and returns the time
// it took.
func (st *detectStats) detect(b *testing.B, h *harness, img []byte, conc, n int) time.Duration {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errc = make(chan error, conc)
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				res, err := h.http.Detect(context.Background(), img, api.DetectOptions{})
				d := time.Since(t0)
				if err != nil {
					errc <- err
					return
				}
				st.mu.Lock()
				st.lat = append(st.lat, d)
				t := res.TimingsMS
				st.infer = append(st.infer, t.Infer)
				st.sum.Decode += t.Decode
				st.sum.Preprocess += t.Preprocess
				st.sum.Queue += t.Queue
				st.sum.Infer += t.Infer
				st.sum.Postprocess += t.Postprocess
				st.trans += api.MS(d) - t.Total
				st.hop += t.Total - (t.Queue + t.Decode + t.Preprocess + t.Infer + t.Postprocess)
				st.batch += res.BatchSize
				st.mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	return elapsed
}

// modelOnly is plugins/onnx's BenchmarkModelOnlyServe running in a process
// of its own: the bare runtime, on request.
type modelOnly struct {
	cmd   *exec.Cmd
	req   io.WriteCloser
	reply *bufio.Scanner
	log   string // the file its output goes to, for errors
}

// output is what the process wrote so far.
func (m *modelOnly) output() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// startModelOnly starts bin (plugins/onnx's test binary) serving model with
// the daemon's ONNX plugin configuration, and warms it at batch 1 and 4
// (two callers each).
func startModelOnly(b *testing.B, bin string, cfg *config.Config, model string) *modelOnly {
	env, err := pluginconfig.Encode(&cfg.ONNX.ONNX)
	if err != nil {
		b.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	m := &modelOnly{cmd: exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkModelOnlyServe$", "-test.benchtime", "1x")}
	m.cmd.Env = append(os.Environ(), env, "AZAION_BENCH_MODEL="+testenv.Model(b, model))
	m.cmd.ExtraFiles = []*os.File{w}
	out, err := os.Create(filepath.Join(b.TempDir(), "model-only.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close() // the process has its own copy
	m.log, m.cmd.Stdout, m.cmd.Stderr = out.Name(), out, out
	if m.req, err = m.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		b.Fatalf("start the model-only side %s: %v", bin, err)
	}
	w.Close()
	m.reply = bufio.NewScanner(r)
	m.reply.Buffer(nil, 1<<20)
	b.Cleanup(func() {
		m.req.Close()
		if err := m.cmd.Wait(); err != nil {
			b.Errorf("model-only side: %v\n%s", err, m.output())
		}
		r.Close()
	})
	for _, bs := range []int{1, 4} {
		if _, _, err := m.run(bs, 2, 2); err != nil {
			b.Fatal(err)
		}
	}
	return m
}

// run runs the bare session n times at batch size bs, spread over callers
// running at once, and returns each run's duration and the time for all.
func (m *modelOnly) run(bs, n, callers int) ([]time.Duration, time.Duration, error) {
	if _, err := fmt.Fprintf(m.req, "%d %d %d\n", bs, n, callers); err != nil {
		return nil, 0, fmt.Errorf("model-only side: %w\n%s", err, m.output())
	}
	if !m.reply.Scan() {
		return nil, 0, fmt.Errorf("model-only side ended (%v)\n%s", m.reply.Err(), m.output())
	}
	line := m.reply.Text()
	if strings.HasPrefix(line, "error: ") {
		return nil, 0, fmt.Errorf("model-only side: %s", strings.TrimPrefix(line, "error: "))
	}
	var out []time.Duration
	for _, f := range strings.Fields(line) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("model-only side: bad answer %q", line)
		}
		out = append(out, time.Duration(ns))
	}
	if len(out) != n+1 {
		return nil, 0, fmt.Errorf("model-only side: %d durations for %d runs", len(out)-1, n)
	}
	return out[1:], out[0], nil
}

// bareRuns accumulates the bare runtime's runs at one batch size.
type bareRuns struct {
	lat    []time.Duration
	images int
	total  time.Duration
}

func (r *bareRuns) add(b *testing.B, m *modelOnly, bs, n, callers int) {
	lat, all, err := m.run(bs, n, callers)
	if err != nil {
		b.Fatal(err)
	}
	r.lat = append(r.lat, lat...)
	r.images += bs * n
	r.total += all
}

// p50 is the median run, in milliseconds.
func (r *bareRuns) p50() float64 {
	lat := slices.Sorted(slices.Values(r.lat))
	return pct(lat, 0.5)
}

// rate is images per second, 0 before any run.
func (r *bareRuns) rate() float64 {
	if r.total <= 0 {
		return 0
	}
	return float64(r.images) / r.total.Seconds()
}
