package daemon

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/sdk/api"
)

// BenchmarkOverload offers the daemon (real ONNX plugin) four times the
// rate it serves, open loop, for AZAION_BENCH_SECONDS (default 20), after
// measuring that rate closed loop. It reports the p50 and p99 latency of the
// answered requests, the share refused with 429, the service time, the
// max_queue_wait in force and the peak RSS of the plugin process. One op is
// the whole run. bench/overload.sh prints the figures.
func BenchmarkOverload(b *testing.B) {
	secs := 20
	if v, err := strconv.Atoi(os.Getenv("AZAION_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	var maxWait time.Duration
	h := startDaemon(b, []string{"yolo11n_dequant_fp32.onnx"}, func(c *config.Config) {
		c.Log.Level = "error"
		c.ONNX.MaxBatch = 1
		maxWait = c.Limits.MaxQueueWait
	})
	img := busJPEG(b)
	ctx := context.Background()
	for range 3 {
		if _, err := h.http.Detect(ctx, img, api.DetectOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	// Closed loop: the rate the daemon serves one client at a time.
	start := time.Now()
	const calib = 20
	for range calib {
		if _, err := h.http.Detect(ctx, img, api.DetectOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	service := time.Since(start) / calib
	bs, _ := h.http.Backends(ctx)
	pid := bs.Backends[0].PID
	b.ResetTimer()
	for range b.N {
		var (
			mu      sync.Mutex
			lat     []time.Duration
			refused int
			other   int
			wg      sync.WaitGroup
		)
		interval := service / 4
		end := time.Now().Add(time.Duration(secs) * time.Second)
		for tick := time.NewTicker(interval); time.Now().Before(end); <-tick.C {
			wg.Go(func() {
				t0 := time.Now()
				_, err := h.http.Detect(ctx, img, api.DetectOptions{})
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				var se *api.StatusError
				switch {
				case err == nil:
					lat = append(lat, d)
				case errors.As(err, &se) && se.Status == 429:
					refused++
				default:
					other++
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		if len(lat) == 0 {
			b.Fatal("nothing answered")
		}
		total := len(lat) + refused + other
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(service.Microseconds())/1000, "service_ms")
		b.ReportMetric(float64(maxWait.Milliseconds()), "max_queue_wait_ms")
		b.ReportMetric(float64(refused)/float64(total), "refused_share")
		b.ReportMetric(float64(other), "other_errors")
		b.ReportMetric(float64(len(lat))/float64(secs), "served/s")
		b.ReportMetric(float64(peakRSS(pid))/(1<<20), "plugin_peak_rss_MiB")
	}
}

// peakRSS returns a process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
