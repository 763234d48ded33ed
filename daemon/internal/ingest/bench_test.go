package ingest

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/amqp"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/stream"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
)

// benchMessages is the stream both sides of BenchmarkIngestVsRaw read
// (AZAION_BENCH_INGEST_MESSAGES overrides it for a quick run).
func benchMessages() int {
	if n, err := strconv.Atoi(os.Getenv("AZAION_BENCH_INGEST_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 20_000
}

// BenchmarkIngestVsRaw publishes one stream of 20,000 messages with ~50 KB
// JPEGs, then in the same run measures the raw client consume rate (decode
// only, nothing written) and the ingest rate (durable files + stored offsets)
// on it, and reports both and their ratio.
func BenchmarkIngestVsRaw(b *testing.B) {
	n := benchMessages()
	name := newStream(b)
	imgs := make([][]byte, 64)
	var wg sync.WaitGroup
	for k := range imgs {
		wg.Go(func() { imgs[k] = annotationtest.JPEG(uint64(k), 224, 224) })
	}
	wg.Wait()
	env, err := NewEnvironment(brokerURI(b))
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	pub, err := NewPublisher(env, name)
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for i := 0; i < n; i++ {
		body := annotationtest.MustEncode(annotationtest.Created(i, imgs[i%len(imgs)]))
		size += len(body)
		if err := pub.Send(body); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pub.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	pub.Close()
	defer func() { _ = env.DeleteStream(name) }()
	b.Logf("stream %s: %d messages, %.1f MB, mean %.1f KB", name, n, float64(size)/1e6, float64(size)/float64(n)/1e3)

	var raw, ing time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		raw += rawConsume(b, env, name, n)
		ing += ingestConsume(b, name, n)
	}
	b.StopTimer()
	rawRate := float64(n*b.N) / raw.Seconds()
	ingRate := float64(n*b.N) / ing.Seconds()
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(ingRate, "ingest_msgs/s")
	b.ReportMetric(ingRate/rawRate, "ingest/raw")
	b.ReportMetric(createRate(b, false), "fs_creates/s")
	b.ReportMetric(createRate(b, true), "fs_spread_creates/s")
	b.ReportMetric(0, "ns/op")
}

// rawConsume reads the whole stream with a plain consumer, decoding each message.
func rawConsume(b *testing.B, env *stream.Environment, name string, n int) time.Duration {
	var count, bad atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	c, err := env.NewConsumer(name, func(_ stream.ConsumerContext, m *amqp.Message) {
		if _, err := annotation.Decode(m.GetData(), annotation.DecodeOptions{}); err != nil {
			bad.Add(1)
		}
		if count.Add(1) == int64(n) {
			close(done)
		}
	}, stream.NewConsumerOptions().SetOffset(stream.OffsetSpecification{}.First()).SetCRCCheck(false))
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("raw consume: %d of %d after 5 minutes", count.Load(), n)
	}
	d := time.Since(start)
	c.Close()
	if bad.Load() > 0 {
		b.Fatalf("%d messages did not decode", bad.Load())
	}
	return d
}

// ingestConsume runs an ingester on a fresh data root until it has applied the whole stream.
func ingestConsume(b *testing.B, name string, n int) time.Duration {
	root := benchRoot(b)
	start := time.Now()
	ing, err := New(Options{Broker: brokerURI(b), Stream: name, Consumer: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		DataRoot: root, BatchMessages: 256, BatchWait: 20 * time.Millisecond, LagInterval: time.Minute,
		Sync: os.Getenv("AZAION_BENCH_INGEST_SYNC")})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for ing.lastApplied.Load() != int64(n-1) {
		if time.Now().After(deadline) {
			b.Fatalf("ingest: offset %d of %d after 5 minutes", ing.lastApplied.Load(), n-1)
		}
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if st := ing.Status(); st.Applied != int64(n) {
		b.Fatalf("ingest applied %d of %d", st.Applied, n)
	}
	return d
}

// benchRoot is a fresh data root under AZAION_BENCH_INGEST_DIR (default the
// test's temporary folder).
func benchRoot(b *testing.B) string {
	base := os.Getenv("AZAION_BENCH_INGEST_DIR")
	if base == "" {
		return b.TempDir()
	}
	d, err := os.MkdirTemp(base, "azaion-bench-ingest-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// createRate measures how many empty files per second the data root's file
// system creates with 8 workers, each in its own folder: in folders made
// next to the data root (spread false), or in folders spread over the file
// system as the ingest's worker folders are (spread true). The ingest creates
// two files per message, so the spread rate bounds it whatever the fsync
// strategy; the other shows what creating files near the data root costs
// (on ext4 without a journal, much more after mass deletions there).
func createRate(b *testing.B, spread bool) float64 {
	d := benchRoot(b)
	if spread {
		spreadSubfolders(d)
	}
	const n, workers = 4000, 8
	for w := 0; w < workers; w++ {
		if err := os.Mkdir(d+"/"+strconv.Itoa(w), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	err := parallel(workers, workers, func(w int) error {
		for i := w; i < n; i += workers {
			f, err := os.Create(d + "/" + strconv.Itoa(w) + "/" + strconv.Itoa(i))
			if err != nil {
				return err
			}
			f.Close()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n / time.Since(start).Seconds()
}
