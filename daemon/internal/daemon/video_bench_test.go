package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/videotest"
	"github.com/azaion/edge/sdk/api"
)

// BenchmarkHTTPVideo measures video detection end to end through the
// daemon and the real ONNX plugin: POST /v1/detect/video naming a 1080p
// H.264 clip of the media folder (AZAION_BENCH_CLIP, default 240 frames
// made by videotest), NDJSON read to the summary, at every 1 and every 4.
// One op is one pass over the clip; it reports processed_fps and
// decoded_fps (frames per second of wall time), the plugin process's CPU
// time per processed frame (decoding and inference together), the largest
// batch and clip_fps (the clip's frame rate). bench/video.sh prints them beside the
// decode-only and model-only figures.
func BenchmarkHTTPVideo(b *testing.B) {
	name := os.Getenv("AZAION_BENCH_MODEL")
	if name == "" {
		name = "yolo11n_dequant_fp32.onnx"
	}
	clip := os.Getenv("AZAION_BENCH_CLIP")
	if clip == "" {
		clip = videotest.Make(b, videotest.Clip{Width: 1920, Height: 1080, Frames: 240})
	}
	// The clip's own folder is the media folder (a link to it from
	// elsewhere would be refused).
	root, err := filepath.EvalSymlinks(clip)
	if err != nil {
		b.Fatal(err)
	}
	h := startDaemon(b, []string{name}, func(c *config.Config) {
		c.Log.Level = "error"
		c.Video.MediaDir = filepath.Dir(root)
		if v := os.Getenv("AZAION_ONNX_THREADS"); v != "" {
			fmt.Sscan(v, &c.ONNX.IntraOpThreads)
		}
	})
	for _, every := range []int{1, 4} {
		b.Run(fmt.Sprintf("every%d", every), func(b *testing.B) {
			var decoded, processed int64
			var fps float64
			batch := 0
			pid := h.pluginPID(b)
			cpu0 := procCPU(b, pid)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				err := h.http.DetectVideo(context.Background(), nil, api.VideoOptions{Path: filepath.Base(root), Every: every}, func(l api.VideoLine) error {
					switch {
					case l.Video != nil:
						fps = l.Video.FPS
					case l.Summary != nil:
						s := l.Summary
						if s.Error != "" {
							return fmt.Errorf("video: %s", s.Error)
						}
						decoded += s.FramesDecoded
						processed += s.FramesProcessed
						batch = max(batch, s.MaxBatch)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			cpu := procCPU(b, pid) - cpu0
			b.ReportMetric(float64(processed)/elapsed.Seconds(), "processed_fps")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(processed), "plugin_cpu_ms/frame")
			b.ReportMetric(float64(runtime.NumCPU()), "cores")
			b.ReportMetric(float64(decoded)/elapsed.Seconds(), "decoded_fps")
			b.ReportMetric(float64(batch), "max_batch")
			b.ReportMetric(fps, "clip_fps")
		})
	}
}

// pluginPID is the ONNX plugin's process id.
func (h *harness) pluginPID(b *testing.B) int {
	bs, err := h.http.Backends(context.Background())
	if err != nil || len(bs.Backends) == 0 || bs.Backends[0].PID == 0 {
		b.Fatalf("backends: %+v %v", bs, err)
	}
	return bs.Backends[0].PID
}

// procCPU is the CPU time (user + system, all threads) process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces): state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (100 per second).
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * 10 * time.Millisecond
}
