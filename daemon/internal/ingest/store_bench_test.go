package ingest

import (
	"os"
	"sync"
	"testing"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
)

// BenchmarkStore applies benchMessages() created messages with ~50 KB JPEGs
// to a fresh data root (under AZAION_BENCH_INGEST_DIR when set) in batches of
// 256, preparing one batch while the previous one commits, as the writer
// does, without a broker: the store's share of the ingest's cost.
func BenchmarkStore(b *testing.B) {
	n := benchMessages()
	imgs := make([][]byte, 64)
	var wg sync.WaitGroup
	for k := range imgs {
		wg.Go(func() { imgs[k] = annotationtest.JPEG(uint64(k), 224, 224) })
	}
	wg.Wait()
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Offset: int64(i), Body: annotationtest.MustEncode(annotationtest.Created(i, imgs[i%len(imgs)]))}
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		s, err := NewStore(benchRoot(b), annotation.DecodeOptions{}, os.Getenv("AZAION_BENCH_INGEST_SYNC"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		commits := make(chan *Prepared, 1)
		done := make(chan error, 1)
		go func() {
			var err error
			for p := range commits {
				if err == nil {
					_, err = s.Commit(p)
				} else {
					p.Close()
				}
			}
			done <- err
		}()
		for k := 0; k < n; k += 256 {
			p, err := s.Prepare(msgs[k:min(k+256, n)])
			if err != nil {
				b.Fatal(err)
			}
			commits <- p
		}
		close(commits)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
