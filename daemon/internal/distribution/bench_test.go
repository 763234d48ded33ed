package distribution_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/model"
)

// BenchmarkPullVsRawGet compares, through the S3 server on loopback, a plain
// GetObject of both parts (the small part from the API, the big part from
// the CDN, bytes discarded) with a full pull (both parts, HMAC while
// downloading, store write, decrypt in memory). Size: AZAION_BENCH_MODEL_MB
// (default 100). bench/models.sh runs it; it prints MB/s and the ratio.
func BenchmarkPullVsRawGet(b *testing.B) {
	mb := 100
	if v, err := strconv.Atoi(os.Getenv("AZAION_BENCH_MODEL_MB")); err == nil && v > 0 {
		mb = v
	}
	e := newEnv(b)
	plain := make([]byte, mb<<20)
	rand.Read(plain)
	ctx := context.Background()
	if _, err := e.publisher.Publish(ctx, plain, model.Descriptor{Name: "bench", Version: "1"}); err != nil {
		b.Fatal(err)
	}
	edge := e.edge(b, alice, e.hw)
	raw := edge.CDN.S3()
	bucket := edge.CDN.Bucket()
	var rawTime, pullTime time.Duration
	var rawBytes int64
	n := 0
	for b.Loop() {
		// raw: both parts, nothing verified, nothing kept
		start := time.Now()
		env, err := edge.API.Get(ctx, distribution.Folder, distribution.SmallName("bench", "1"), e.hw)
		if err != nil {
			b.Fatal(err)
		}
		out, err := raw.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(distribution.BigKey("bench", "1"))})
		if err != nil {
			b.Fatal(err)
		}
		nb, err := io.Copy(io.Discard, out.Body)
		out.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
		rawBytes = nb + int64(len(env))

		// pull into a fresh store
		st, err := modelstore.Open(filepath.Join(b.TempDir(), "models"))
		if err != nil {
			b.Fatal(err)
		}
		edge.Store = st
		start = time.Now()
		p, err := edge.Pull(ctx, "bench", "1", nil)
		if err != nil {
			b.Fatal(err)
		}
		pullTime += time.Since(start)
		if len(p.Bytes) != len(plain) {
			b.Fatal("pulled size differs")
		}
		clear(p.Bytes)
		n++
	}
	mbps := func(d time.Duration) float64 { return float64(rawBytes) * float64(n) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(rawTime), "raw-MB/s")
	b.ReportMetric(mbps(pullTime), "pull-MB/s")
	b.ReportMetric(rawTime.Seconds()/pullTime.Seconds(), "pull/raw")
	fmt.Printf("models: %d MiB model, %d runs: raw GetObject (both parts) %.0f MB/s (%.2f s/run), full pull (fetch+verify+store+decrypt) %.0f MB/s (%.2f s/run), ratio pull/raw %.2f (target >= 0.80)\n",
		mb, n, mbps(rawTime), rawTime.Seconds()/float64(n), mbps(pullTime), pullTime.Seconds()/float64(n), rawTime.Seconds()/pullTime.Seconds())
}
