package video

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/videotest"
)

// BenchClip is the clip of the video benchmarks (bench/video.sh): 1080p
// H.264, 240 frames at 30 fps, made by videotest from bus.jpg.
var BenchClip = videotest.Clip{Width: 1920, Height: 1080, Frames: 240}

// BenchmarkDecode measures the plugin's decode path alone (Capture.Read for
// the frames the model gets, Capture.Grab for the frames it skips) on
// AZAION_BENCH_CLIP (default BenchClip), at every 1 and every 4. One op is
// one processed frame; it reports processed_fps (the rate at which the
// decoder can hand frames to the model), decoded_fps, and the CPU time per
// processed frame (all threads; reopening the clip included).
func BenchmarkDecode(b *testing.B) {
	clip := os.Getenv("AZAION_BENCH_CLIP")
	if clip == "" {
		clip = videotest.Make(b, BenchClip)
	}
	for _, every := range []int{1, 4} {
		b.Run(fmt.Sprintf("every%d", every), func(b *testing.B) {
			m := gocv.NewMat()
			defer m.Close()
			var c *Capture
			open := func() {
				c.Close()
				var err error
				if c, err = Open(context.Background(), clip); err != nil {
					b.Fatal(err)
				}
			}
			open()
			defer func() { c.Close() }()
			var decoded int
			var reopen time.Duration
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for k := 0; k < every; k++ {
					var ok bool
					if k == every-1 {
						_, ok = c.Read(&m)
					} else {
						_, ok = c.Grab()
					}
					if !ok { // the end of the clip: start it again, off the clock
						t0 := time.Now()
						open()
						reopen += time.Since(t0)
						k--
						continue
					}
					decoded++
				}
			}
			elapsed := time.Since(start) - reopen
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "processed_fps")
			b.ReportMetric(float64(decoded)/elapsed.Seconds(), "decoded_fps")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu_ms/frame")
		})
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
