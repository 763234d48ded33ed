package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/dataroot"
)

// BenchmarkAugmentDir augments the data root in AZAION_BENCH_DATA (made by
// bench/augment.sh; else 24 generated 1280x720 images) once per iteration
// with AZAION_BENCH_WORKERS workers (default: all CPUs) and reports input
// images per second.
func BenchmarkAugmentDir(b *testing.B) {
	root := os.Getenv("AZAION_BENCH_DATA")
	if root == "" {
		root = b.TempDir()
		for i := 0; i < 24; i++ {
			writeImage(b, filepath.Join(root, dataroot.Data), fmt.Sprintf("b%03d.jpg", i), 1280, 720, goodLabel)
		}
	}
	p := testParams(0)
	if w, err := strconv.Atoi(os.Getenv("AZAION_BENCH_WORKERS")); err == nil {
		p.Workers = w
	}
	names, err := listImages(filepath.Join(root, dataroot.Data))
	if err != nil || len(names) == 0 {
		b.Fatalf("no images in %s: %v", root, err)
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(filepath.Join(root, dataroot.Processed))
		b.StartTimer()
		start := time.Now()
		if err := augmentJob(context.Background(), root, p, nil, nil); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(len(names)*b.N)/total.Seconds(), "images/s")
	b.ReportMetric(float64(len(names)*(p.Variants+1)*b.N)/total.Seconds(), "outputs/s")
}
