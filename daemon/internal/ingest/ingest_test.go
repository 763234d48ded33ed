package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
	"github.com/azaion/edge/sdk/dataroot"
)

// TestIngest2000 publishes 2,000 generated annotations and checks every file,
// both stored offsets, the status and the metrics.
func TestIngest2000(t *testing.T) {
	const n = 2000
	name := newStream(t)
	as := generated(n, 48, 32)
	publish(t, name, encodeAll(as))
	root := t.TempDir()
	ing := startIngester(t, Options{Broker: brokerURI(t), Stream: name, Consumer: "c2000", DataRoot: root,
		BatchMessages: 128, BatchWait: 20 * time.Millisecond, LagInterval: 200 * time.Millisecond})
	waitFor(t, "2000 messages applied", 60*time.Second, func() bool { return ing.Status().LastOffset == n-1 })
	checkCreated(t, root, as)
	if got := fileOffset(root); got != n-1 {
		t.Fatalf("offset.yaml: %d, want %d", got, n-1)
	}
	env, err := NewEnvironment(brokerURI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if off, err := env.QueryOffset("c2000", name); err != nil || off != n-1 {
		t.Fatalf("broker offset: %d %v, want %d", off, err, n-1)
	}
	tail, err := TailOffset(context.Background(), env, name, 5*time.Second)
	if err != nil || tail != n-1 {
		t.Fatalf("TailOffset: %d %v, want %d", tail, err, n-1)
	}
	waitFor(t, "lag 0 reported", 10*time.Second, func() bool { s := ing.Status(); return s.TailOffset == n-1 && s.Lag == 0 })
	st := ing.Status()
	if st.Applied != n || st.Rejected != 0 || !st.Connected {
		t.Fatalf("status %+v", st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(ing.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["azaion_ingest_messages_applied_total"] != n || got["azaion_ingest_last_offset"] != n-1 ||
		got["azaion_ingest_lag_messages"] != 0 || got["azaion_ingest_connected"] != 1 {
		t.Fatalf("metrics %v", got)
	}
	waitFor(t, "status file", 5*time.Second, func() bool { s, err := ReadStatus(root); return err == nil && s.LastOffset == n-1 })
}

// TestResumeFromBrokerOffset checks that without offset.yaml the consumer
// resumes after the offset the broker stored under its name.
func TestResumeFromBrokerOffset(t *testing.T) {
	name := newStream(t)
	as := generated(20, 16, 16)
	publish(t, name, encodeAll(as))
	env, err := NewEnvironment(brokerURI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.StoreOffset("resumer", name, 9); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ing := startIngester(t, Options{Broker: brokerURI(t), Stream: name, Consumer: "resumer", DataRoot: root, BatchWait: time.Millisecond})
	waitFor(t, "offset 19", 30*time.Second, func() bool { return ing.Status().LastOffset == 19 })
	checkCreated(t, root, as[10:])
}

// child starts the test binary as a consumer process.
func child(t *testing.T, name, root string) *exec.Cmd {
	t.Helper()
	cmd := childCmd(t, name, root)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// childCmd returns the (unstarted) consumer process command.
func childCmd(t *testing.T, name, root string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AZAION_INGEST_CHILD=1", "AZAION_STREAM_URI="+brokerURI(t).Reveal(),
		"AZAION_STREAM="+name, "AZAION_DATA_DIR="+root, "AZAION_INGEST_CHILD_BATCH=32", "AZAION_INGEST_CHILD_DELAY=15ms")
	return cmd
}

// TestSecondIngestRefused: a second ingest process on the same data root
// exits at once with an error naming the root and the first one's pid,
// instead of removing its work folders; the first one goes on and applies
// every message. Once the first process is gone, the root is free again.
func TestSecondIngestRefused(t *testing.T) {
	const n = 200
	name := newStream(t)
	as := generated(n, 24, 16)
	publish(t, name, encodeAll(as))
	root := t.TempDir()
	first := child(t, name, root)
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	waitFor(t, "the first ingest's progress", 60*time.Second, func() bool { return fileOffset(root) >= 0 })

	second := childCmd(t, name, root)
	var stderr bytes.Buffer
	second.Stderr = &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- second.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("the second ingest exited 0:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = second.Process.Kill()
		<-exited
		t.Fatalf("the second ingest on the same data root is still running after 30s:\n%s", stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, root) || !strings.Contains(msg, fmt.Sprintf("pid %d", first.Process.Pid)) {
		t.Fatalf("the second ingest's error names neither the data root %s nor the first one's pid %d:\n%s", root, first.Process.Pid, msg)
	}
	t.Logf("second ingest: %s", strings.TrimSpace(msg))

	waitFor(t, "all applied by the first ingest", 60*time.Second, func() bool { return fileOffset(root) == n-1 })
	checkCreated(t, root, as)
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	s, err := NewStore(root, annotation.DecodeOptions{}, SyncFiles)
	if err != nil {
		t.Fatalf("the data root is still locked after the first ingest died: %v", err)
	}
	s.Close()
}

// TestConsumerKilled kills the consumer process with SIGKILL three times
// mid-stream; after the last restart every file is present exactly once with
// the right bytes.
func TestConsumerKilled(t *testing.T) {
	const n = 2000
	name := newStream(t)
	as := generated(n, 48, 32)
	publish(t, name, encodeAll(as))
	root := t.TempDir()
	killedAt := []int64{}
	for _, at := range []int64{300, 900, 1500} {
		cmd := child(t, name, root)
		waitFor(t, "progress", 60*time.Second, func() bool { return fileOffset(root) >= at })
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		killedAt = append(killedAt, fileOffset(root))
	}
	for _, k := range killedAt {
		if k >= n-1 {
			t.Fatalf("a kill came after the end (offsets at the kills: %v): the test did not kill mid-stream", killedAt)
		}
	}
	t.Logf("killed at offsets %v", killedAt)
	cmd := child(t, name, root)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, "all applied", 60*time.Second, func() bool { return fileOffset(root) == n-1 })
	checkCreated(t, root, as)
}

// TestBrokerKilled kills the broker with SIGKILL mid-stream and restarts it;
// the consumer reconnects and finishes with every file right.
func TestBrokerKilled(t *testing.T) {
	ctl := testenv.Env(t, "AZAION_TEST_RABBITMQ_CTL", "the RabbitMQ control script")
	lockBroker(t, syscall.LOCK_EX) // no other package's test may use the broker meanwhile
	const n = 2000
	name := newStream(t)
	as := generated(n, 48, 32)
	publish(t, name, encodeAll(as))
	root := t.TempDir()
	testBatchHook = func() { time.Sleep(10 * time.Millisecond) }
	t.Cleanup(func() { testBatchHook = nil }) // after the ingester's cleanup has stopped it
	ing := startIngester(t, Options{Broker: brokerURI(t), Stream: name, Consumer: "survivor", DataRoot: root,
		BatchMessages: 32, BatchWait: 10 * time.Millisecond, LagInterval: time.Second})
	waitFor(t, "progress", 60*time.Second, func() bool { return ing.Status().LastOffset >= 400 })
	if out, err := exec.Command(ctl, "kill9").CombinedOutput(); err != nil {
		t.Fatalf("kill9: %v %s", err, out)
	}
	at := ing.Status().LastOffset
	restarted := false
	defer func() {
		if !restarted {
			_ = exec.Command(ctl, "start").Run()
		}
	}()
	time.Sleep(time.Second)
	if out, err := exec.Command(ctl, "start").CombinedOutput(); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	restarted = true
	if at >= n-1 {
		t.Fatalf("the broker was killed after the end")
	}
	t.Logf("broker killed at offset %d", at)
	waitFor(t, "all applied after the broker restart", 90*time.Second, func() bool { return ing.Status().LastOffset == n-1 })
	checkCreated(t, root, as)
	env, err := NewEnvironment(brokerURI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	waitFor(t, "broker offset stored", 10*time.Second, func() bool {
		off, err := env.QueryOffset("survivor", name)
		return err == nil && off == n-1
	})
}

// TestRejects publishes every kind of bad message between good ones.
func TestRejects(t *testing.T) {
	good := func(i int) []byte {
		return annotationtest.MustEncode(annotationtest.Created(i, annotationtest.JPEG(uint64(i), 16, 16)))
	}
	raw := func(a *annotation.Annotation) []byte { return annotationtest.MustEncode(a) }
	mod := func(f func(a *annotation.Annotation)) []byte {
		a := annotationtest.Created(999, annotationtest.JPEG(999, 16, 16))
		f(a)
		return raw(a)
	}
	big := annotationtest.JPEG(5, 200, 200)
	jpg := annotationtest.JPEG(6, 16, 16)
	bad := []struct {
		msg    []byte
		reason string
	}{
		{[]byte("not msgpack \xc1"), string(annotation.ReasonType)},
		{[]byte{0xc1}, string(annotation.ReasonNotMsgpack)},
		{[]byte{0x93, 0x01, 0xa1, 'x', 0x00}, string(annotation.ReasonArity)},
		{[]byte{0x98, 0x01, 0x05, 0x00, 0x00, 0xa0, 0xa0, 0xc0, 0x90}, string(annotation.ReasonType)},
		{[]byte{0x98, 0x02, 0xa1, 'x', 0x00, 0x00, 0xa0, 0xa0, 0xc0, 0x90}, string(annotation.ReasonVersion)},
		{mod(func(a *annotation.Annotation) { a.Name = "../../etc/passwd" }), string(annotation.ReasonName)},
		{mod(func(a *annotation.Annotation) { a.Name = "a/b" }), string(annotation.ReasonName)},
		{mod(func(a *annotation.Annotation) { a.Name = ".." }), string(annotation.ReasonName)},
		{mod(func(a *annotation.Annotation) { a.Image = big }), string(annotation.ReasonImageSize)},
		{mod(func(a *annotation.Annotation) { a.Image = []byte("GIF89a not an image") }), string(annotation.ReasonImage)},
		{mod(func(a *annotation.Annotation) { a.Image = jpg[:len(jpg)/2] }), string(annotation.ReasonImage)},
		{mod(func(a *annotation.Annotation) { a.Labels[0].Class = 80 }), string(annotation.ReasonLabels)},
		{mod(func(a *annotation.Annotation) { a.Labels[0].CX = 1.01 }), string(annotation.ReasonLabels)},
		{mod(func(a *annotation.Annotation) {
			a.Op, a.Image, a.ImageFormat = annotation.Edited, nil, ""
			a.Name = "never_seen"
		}), ReasonNotFound},
		{mod(func(a *annotation.Annotation) {
			a.Op, a.Image, a.ImageFormat = annotation.Validated, nil, ""
			a.Name = "never_seen"
		}), ReasonNoImage},
	}
	var bodies [][]byte
	var goods []*annotation.Annotation
	want := map[int64]string{}
	for k, b := range bad {
		gi := k
		goods = append(goods, annotationtest.Created(gi, annotationtest.JPEG(uint64(gi), 16, 16)))
		bodies = append(bodies, good(gi), b.msg)
		want[int64(len(bodies)-1)] = b.reason
	}
	goods = append(goods, annotationtest.Created(len(bad), annotationtest.JPEG(uint64(len(bad)), 16, 16)))
	bodies = append(bodies, good(len(bad)))
	name := newStream(t)
	publish(t, name, bodies)
	root := t.TempDir()
	ing := startIngester(t, Options{Broker: brokerURI(t), Stream: name, Consumer: "rej", DataRoot: root,
		Decode: annotation.DecodeOptions{MaxImageBytes: len(big) - 1}, BatchMessages: 4, BatchWait: time.Millisecond})
	waitFor(t, "all handled", 30*time.Second, func() bool { return ing.Status().LastOffset == int64(len(bodies)-1) })
	for off, reason := range want {
		b, err := os.ReadFile(filepath.Join(root, RejectsDir, itoa64(off)+".txt"))
		if err != nil {
			t.Errorf("offset %d (%s): %v", off, reason, err)
			continue
		}
		line := string(b)
		if strings.Count(line, "\n") != 1 || !strings.Contains(line, ": "+reason+": ") {
			t.Errorf("offset %d: reason file %q, want one line with reason %s", off, line, reason)
		}
		if _, err := os.Stat(filepath.Join(root, RejectsDir, itoa64(off)+".msgpack")); err != nil {
			t.Errorf("offset %d: the message itself was not kept: %v", off, err)
		}
	}
	if st := ing.Status(); st.Rejected != int64(len(bad)) || st.Applied != int64(len(goods)) {
		t.Fatalf("status: applied %d rejected %d, want %d and %d", st.Applied, st.Rejected, len(goods), len(bad))
	}
	// Only the good annotations (and the rejects) are on disk: nothing escaped the data root.
	var files []string
	for _, f := range tree(t, root) {
		if !strings.HasPrefix(f, RejectsDir+"/") {
			files = append(files, f)
		}
	}
	if len(files) != 2*len(goods) {
		t.Fatalf("files outside rejects/: %v", files)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "etc")); err == nil {
		t.Fatal("a path traversal escaped the data root")
	}
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

// TestOperationSequences publishes interleaved event sequences for several
// annotations and checks where each one ends.
func TestOperationSequences(t *testing.T) {
	name := newStream(t)
	msgs, cases := sequenceMessages()
	publish(t, name, msgs)
	root := t.TempDir()
	ing := startIngester(t, Options{Broker: brokerURI(t), Stream: name, Consumer: "seq", DataRoot: root, BatchMessages: 3, BatchWait: time.Millisecond})
	waitFor(t, "all handled", 30*time.Second, func() bool { return ing.Status().LastOffset == int64(len(msgs)-1) })
	checkSequences(t, root, cases)
}

// TestDataRootError checks that an unwritable data root stops Run with an
// error naming it (after retries), the offset not advancing past it.
func TestDataRootError(t *testing.T) {
	name := newStream(t)
	publish(t, name, encodeAll(generated(3, 16, 16)))
	root := t.TempDir()
	ing, err := New(Options{Broker: brokerURI(t), Stream: name, Consumer: "broken", DataRoot: root, BatchWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(root, dataroot.Seed, "images")
	if err := os.Remove(images); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(images, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ing.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), root) {
			t.Fatalf("Run: %v, want an error naming the data root", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not stop on an unwritable data root")
	}
	if got := fileOffset(root); got != -1 {
		t.Fatalf("offset.yaml advanced to %d", got)
	}
}
