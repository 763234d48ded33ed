package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
	"github.com/azaion/edge/sdk/dataroot"
)

// TestMain lets the test binary run as a standalone consumer process
// (AZAION_INGEST_CHILD=1), so tests can kill a real process mid-stream.
func TestMain(m *testing.M) {
	if os.Getenv("AZAION_INGEST_CHILD") == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	if d, err := time.ParseDuration(os.Getenv("AZAION_INGEST_CHILD_DELAY")); err == nil {
		testBatchHook = func() { time.Sleep(d) }
	}
	batch, _ := strconv.Atoi(os.Getenv("AZAION_INGEST_CHILD_BATCH"))
	ing, err := New(Options{
		Broker: config.Secret(os.Getenv("AZAION_STREAM_URI")), Stream: os.Getenv("AZAION_STREAM"),
		Consumer: "child", DataRoot: os.Getenv("AZAION_DATA_DIR"), BatchMessages: batch,
		BatchWait: 20 * time.Millisecond, LagInterval: time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := ing.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// brokerURI returns the test broker's URI. The first call in a test takes
// a shared lock on the broker (AZAION_TEST_RABBITMQ_LOCK), so that a test in
// another package that kills the broker waits for this test to end.
func brokerURI(t testing.TB) config.Secret {
	uri := config.Secret(testenv.Env(t, "AZAION_TEST_STREAM_URI", "RabbitMQ with the stream plugin"))
	lockBroker(t, syscall.LOCK_SH)
	return uri
}

var brokerLocks = map[string]bool{}

// lockBroker flocks AZAION_TEST_RABBITMQ_LOCK (once per test) until the test ends.
func lockBroker(t testing.TB, how int) {
	if brokerLocks[t.Name()] {
		return
	}
	f, err := os.Open(testenv.Env(t, "AZAION_TEST_RABBITMQ_LOCK", "the RabbitMQ lock file"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		t.Fatal(err)
	}
	brokerLocks[t.Name()] = true
	t.Cleanup(func() { f.Close(); delete(brokerLocks, t.Name()) })
}

var streamSeq int

// newStream returns a fresh stream name for one test.
func newStream(t testing.TB) string {
	streamSeq++
	return fmt.Sprintf("test-%s-%d-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano(), streamSeq)
}

// publish sends bodies to the stream and waits for the confirms.
func publish(t testing.TB, name string, bodies [][]byte) {
	t.Helper()
	env, err := NewEnvironment(brokerURI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pub, err := NewPublisher(env, name)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, b := range bodies {
		if err := pub.Send(b); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// generated returns n created annotations with distinct small JPEGs.
func generated(n, w, h int) []*annotation.Annotation {
	out := make([]*annotation.Annotation, n)
	var wg sync.WaitGroup
	for k := 0; k < 4; k++ {
		wg.Go(func() {
			for i := k; i < n; i += 4 {
				out[i] = annotationtest.Created(i, annotationtest.JPEG(uint64(i), w, h))
			}
		})
	}
	wg.Wait()
	return out
}

func encodeAll(as []*annotation.Annotation) [][]byte {
	out := make([][]byte, len(as))
	for i, a := range as {
		out[i] = annotationtest.MustEncode(a)
	}
	return out
}

// startIngester runs an in-process ingester until the test ends.
func startIngester(t testing.TB, opts Options) *Ingester {
	t.Helper()
	ing, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest Run: %v", err)
		}
	})
	return ing
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileOffset returns the offset in root/offset.yaml (-1 when none).
func fileOffset(root string) int64 {
	o, ok, err := ReadOffset(root)
	if err != nil || !ok {
		return -1
	}
	return o.Offset
}

// tree lists every file under root (relative paths), skipping the status and offset files.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch rel {
		case OffsetFile, StatusFile, StatusFile + ".tmp", LockFile:
			return nil
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// checkCreated asserts root holds exactly the created annotations as, byte for byte.
func checkCreated(t testing.TB, root string, as []*annotation.Annotation) {
	t.Helper()
	want := map[string][]byte{}
	for _, a := range as {
		want[filepath.Join(dataroot.Seed, "images", a.Name+".jpg")] = a.Image
		want[filepath.Join(dataroot.Seed, "labels", a.Name+".txt")] = labelBytes(a.Labels)
	}
	got := tree(t, root)
	missing, bad, extra := 0, 0, []string{}
	for _, rel := range got {
		w, ok := want[rel]
		if !ok {
			extra = append(extra, rel)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil || !bytes.Equal(b, w) {
			bad++
		}
		delete(want, rel)
	}
	missing = len(want)
	if missing > 0 || bad > 0 || len(extra) > 0 {
		if len(extra) > 5 {
			extra = extra[:5]
		}
		t.Fatalf("data root: %d files missing, %d with wrong bytes, extra files %v", missing, bad, extra)
	}
}
