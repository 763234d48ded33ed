package daemon

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/sdk/api"
)

// BenchmarkHTTPDetect measures end-to-end detection through the daemon: a
// JPEG POSTed over loopback HTTP to the JSON answer, with the real ONNX
// plugin, at 1 and 4 concurrent clients. One op is one image. It reports
// images/s, p50/p99 latency and the mean per-stage split (decode,
// preprocess, queue, infer, post as the daemon reports them; transport is
// the client-measured latency minus the daemon's total; overhead is the
// daemon's total minus those stages: reading the body, the hop to the
// plugin and back, the JSON answer). bench/inference.sh
// runs it beside plugins/onnx's BenchmarkModelOnly with the same plugin
// configuration and prints the ratios.
//
// AZAION_BENCH_MODEL names a shared test model (default yolo11n_dequant_fp32.onnx);
// AZAION_BENCH_IMAGE is the image file to send (default bus.jpg);
// AZAION_ONNX_THREADS, AZAION_ONNX_DECODE_THREADS and AZAION_ONNX_SPINNING=1
// change the served threads.
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
	})
	img := busJPEG(b)
	if p := os.Getenv("AZAION_BENCH_IMAGE"); p != "" {
		var err error
		if img, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
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
				mu    sync.Mutex
				lat   []time.Duration
				sum   api.TimingsMS
				trans float64
				hop   float64
				batch int
				next  atomic.Int64
				wg    sync.WaitGroup
				errc  = make(chan error, conc)
			)
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						res, err := h.http.Detect(context.Background(), img, api.DetectOptions{})
						d := time.Since(t0)
						if err != nil {
							errc <- err
							return
						}
						mu.Lock()
						lat = append(lat, d)
						t := res.TimingsMS
						sum.Decode += t.Decode
						sum.Preprocess += t.Preprocess
						sum.Queue += t.Queue
						sum.Infer += t.Infer
						sum.Postprocess += t.Postprocess
						trans += api.MS(d) - t.Total
						hop += t.Total - (t.Queue + t.Decode + t.Preprocess + t.Infer + t.Postprocess)
						batch += res.BatchSize
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			select {
			case err := <-errc:
				b.Fatal(err)
			default:
			}
			n := float64(len(lat))
			slices.Sort(lat)
			pct := func(p float64) float64 { return api.MS(lat[min(len(lat)-1, int(p*n))]) }
			b.ReportMetric(n/elapsed.Seconds(), "images/s")
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
			b.ReportMetric(sum.Decode/n, "decode_ms")
			b.ReportMetric(sum.Preprocess/n, "preprocess_ms")
			b.ReportMetric(sum.Queue/n, "queue_ms")
			b.ReportMetric(sum.Infer/n, "infer_ms")
			b.ReportMetric(sum.Postprocess/n, "post_ms")
			b.ReportMetric(trans/n, "transport_ms")
			b.ReportMetric(hop/n, "overhead_ms")
			b.ReportMetric(float64(batch)/n, "batch")
		})
	}
}
