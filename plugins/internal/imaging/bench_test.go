package imaging

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/imageheader"
)

// cpuTime is the CPU time (user + system) of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuLoop runs f b.N times and reports the process's CPU time per op as
// cpu_ms (steadier than wall time on a shared machine). The process's, not
// the calling thread's: the JPEG decodes run on a kept thread of
// plugins/internal/cthread.
func cpuLoop(b *testing.B, f func()) {
	c0 := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu_ms")
}

// wallLoop runs f b.N times and reports its latency (wall_ms) and the
// process's CPU time per op (cpu_ms: every thread, for two-thread decodes).
func wallLoop(b *testing.B, f func()) {
	c0, t0 := cpuTime(), time.Now()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(time.Since(t0).Microseconds())/1000/float64(b.N), "wall_ms")
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu_ms")
}

// BenchmarkDecode decodes bus.jpg and a 4K JPEG (bus.jpg stretched to
// 3840x2160) with OpenCV (the plugin's decoder before TurboJPEG), as Decode
// does on one thread at full size and at the scale ChooseScale picks for a
// 640x640 input (reported as scale_8ths), with TurboJPEG at that scale, and
// as Decode does at every other DCT scale M/8, then runs the whole
// Preprocess (decode at the chosen scale + letterbox). Each reports cpu_ms,
// the CPU time per image (steadier than ns/op on a shared machine).
//
//	go test -run '^$' -bench 'Decode/.*/(opencv|full|chosen|turbojpeg|preprocess)' -benchtime 20x ./plugins/internal/imaging
func BenchmarkDecode(b *testing.B) {
	for _, img := range []struct {
		name string
		data []byte
	}{{"bus", readTestImage(b, "bus.jpg")}, {"4k", bus4K(b)}} {
		hdr, err := imageheader.Read(img.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %dx%d, %d bytes, chosen scale %d/8", img.name, hdr.Width, hdr.Height, len(img.data), ChooseScale(hdr, 640, 640))
		b.Run(img.name+"/opencv", func(b *testing.B) {
			cpuLoop(b, func() {
				m, err := gocv.IMDecode(img.data, gocv.IMReadColor)
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			})
		})
		chosen := ChooseScale(hdr, 640, 640)
		for _, run := range []struct {
			name  string
			scale int
		}{{"full", FullScale}, {"chosen", chosen}} {
			b.Run(img.name+"/"+run.name, func(b *testing.B) {
				cpuLoop(b, func() {
					im, err := Decode(img.data, 640, 640, Options{Scale: run.scale})
					if err != nil {
						b.Fatal(err)
					}
					im.Close()
				})
				b.ReportMetric(float64(run.scale), "scale_8ths")
			})
		}
		// TurboJPEG itself at the chosen scale (what Decode falls back to):
		// against "chosen", what splitjpeg.c's Huffman decoder saves on one
		// thread.
		b.Run(img.name+"/turbojpeg", func(b *testing.B) {
			cpuLoop(b, func() {
				m, err := decodeTJ(img.data, hdr.Width, hdr.Height, chosen)
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			})
			b.ReportMetric(float64(chosen), "scale_8ths")
		})
		for s := 1; s < FullScale; s++ {
			b.Run(fmt.Sprintf("%s/scale_%d_8", img.name, s), func(b *testing.B) {
				cpuLoop(b, func() {
					im, err := Decode(img.data, 640, 640, Options{Scale: s})
					if err != nil {
						b.Fatal(err)
					}
					im.Close()
				})
			})
		}
		// Options.Parallel: the same decode on two threads; wall_ms is the
		// latency, cpu_ms the process's CPU time per image (both threads).
		for _, par := range []bool{false, true} {
			name := map[bool]string{false: "/single", true: "/parallel"}[par]
			b.Run(img.name+name, func(b *testing.B) {
				wallLoop(b, func() {
					im, err := Decode(img.data, 640, 640, Options{Parallel: par})
					if err != nil {
						b.Fatal(err)
					}
					im.Close()
				})
			})
		}
		b.Run(img.name+"/preprocess", func(b *testing.B) {
			dst := make([]float32, 3*640*640)
			cpuLoop(b, func() {
				if _, err := Preprocess(img.data, dst, 640, 640, false, Options{}); err != nil {
					b.Fatal(err)
				}
			})
		})
		// A lone image as served: the decode on two threads with the
		// letterbox beside it; wall_ms is its latency.
		b.Run(img.name+"/preprocess_parallel", func(b *testing.B) {
			dst := make([]float32, 3*640*640)
			wallLoop(b, func() {
				if _, err := Preprocess(img.data, dst, 640, 640, false, Options{Parallel: true}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
