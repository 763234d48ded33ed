package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/dataroot"
)

// signalWriter closes seen the first time a log line contains want.
type signalWriter struct {
	want string
	once sync.Once
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestPipelineRecovers: a batch that cannot be applied (the data root is
// broken for a while) is retried; once the data root is repaired, that batch
// and every later one are applied in order, and the files end as if nothing
// had happened.
func TestPipelineRecovers(t *testing.T) {
	name := newStream(t)
	msgs, cases := sequenceMessages()
	publish(t, name, msgs)
	root := t.TempDir()
	logw := &signalWriter{want: "applying a batch failed", seen: make(chan struct{})}
	ing, err := New(Options{Broker: brokerURI(t), Stream: name, Consumer: "recover", DataRoot: root,
		BatchMessages: 3, BatchWait: time.Millisecond, Log: slog.New(slog.NewTextHandler(logw, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Break the data root before the run, repair it after the first failure.
	images := filepath.Join(root, dataroot.Seed, "images")
	if err := os.Rename(images, images+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(images, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest Run: %v", err)
		}
	}()
	select {
	case <-logw.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch failed on the broken data root")
	}
	if err := os.Remove(images); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(images+".away", images); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all handled", 30*time.Second, func() bool { return ing.Status().LastOffset == int64(len(msgs)-1) })
	checkSequences(t, root, cases)
}
