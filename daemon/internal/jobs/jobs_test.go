package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/sdk/api"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	"github.com/azaion/edge/sdk/trainer"
)

var pluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "azaion-jobs-test-")
	if err != nil {
		panic(err)
	}
	pluginBin = filepath.Join(dir, "azaion-plugin-trainer")
	code := 1
	defer func() { os.RemoveAll(dir); os.Exit(code) }()
	// The test runs in daemon/internal/jobs; the module root is three up.
	cmd := exec.Command("go", "build", "-o", pluginBin, "./plugins/trainer/cmd/azaion-plugin-trainer")
	cmd.Dir = filepath.Join("..", "..", "..")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the trainer plugin:", err)
		return
	}
	code = m.Run()
}

// launch starts the real plugin binary over go-plugin and returns its gRPC client.
func launch(t *testing.T) trainer.Trainer {
	t.Helper()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdkplugin.Handshake,
		Plugins:          trainer.PluginSet(nil),
		Cmd:              exec.Command(pluginBin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}),
		GRPCDialOptions:  sdkplugin.DialOptions(),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(trainer.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	tr := raw.(trainer.Trainer)
	info, err := tr.Info(context.Background())
	if err != nil || info.APIVersions[0] != trainer.APIVersion {
		t.Fatal(info, err)
	}
	return tr
}

// writeData writes n labelled 320x240 JPEGs to root/data.
func writeData(t *testing.T, root string, n int) {
	t.Helper()
	for _, d := range []string{"data/images", "data/labels"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 320, 240))
		for y := 0; y < 240; y++ {
			for x := 0; x < 320; x++ {
				c := color.RGBA{uint8(x), uint8(y), 90, 255}
				if x >= 80 && x < 160 && y >= 60 && y < 120 {
					c = color.RGBA{250, 30, 30, 255}
				}
				img.Set(x, y, c)
			}
		}
		f, err := os.Create(filepath.Join(root, "data/images", fmt.Sprintf("im%02d.jpg", i)))
		if err != nil {
			t.Fatal(err)
		}
		jpeg.Encode(f, img, &jpeg.Options{Quality: 85})
		f.Close()
		os.WriteFile(filepath.Join(root, "data/labels", fmt.Sprintf("im%02d.txt", i)), []byte("2 0.375 0.375 0.25 0.25\n"), 0o644)
	}
	os.WriteFile(filepath.Join(root, "data/images", "broken.jpg"), []byte("not a jpeg"), 0o644)
}

func newServer(t *testing.T, r jobs.Runner, root string) (*jobs.Manager, *api.Client) {
	t.Helper()
	defaults := map[string]json.RawMessage{"augment": json.RawMessage(`{"workers": 2, "seed": 5}`)}
	m := jobs.New(r, jobs.Options{DataRoot: root, Defaults: defaults})
	mux := http.NewServeMux()
	m.Register(func(p string, h localapi.HandlerFunc) { mux.Handle(p, localapi.Handler(h)) })
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { m.Close(); srv.Close() })
	return m, api.NewHTTPClient(srv.URL, "")
}

// TestJobsThroughPlugin runs validate, augment and dataset jobs on the real
// plugin binary through the HTTP API and follows each over SSE.
func TestJobsThroughPlugin(t *testing.T) {
	root := t.TempDir()
	writeData(t, root, 6)
	_, c := newServer(t, launch(t), root)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run := func(typ string, params string) (*api.Job, []api.JobEvent) {
		t.Helper()
		req := api.JobRequest{Type: typ}
		if params != "" {
			req.Params = json.RawMessage(params)
		}
		j, err := c.CreateJob(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if j.Type != typ || j.ID == "" {
			t.Fatalf("created %+v", j)
		}
		var evs []api.JobEvent
		end, err := c.WatchJob(ctx, j.ID, func(ev api.JobEvent) error { evs = append(evs, ev); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return end, evs
	}

	end, _ := run("validate", "")
	if end.State != api.JobSucceeded || end.Metrics["corrupted"] != 1 {
		t.Fatalf("validate ended %+v", end)
	}
	if _, err := os.Stat(filepath.Join(root, "data-corrupted/reasons/broken.txt")); err != nil {
		t.Fatalf("no reason file for the broken image: %v", err)
	}

	end, evs := run("augment", `{"variants": 7}`)
	if end.State != api.JobSucceeded || end.Progress != 1 || end.Metrics["outputs_written"] != 48 {
		t.Fatalf("augment ended %+v", end)
	}
	if len(evs) < 2 {
		t.Fatalf("only %d progress events", len(evs))
	}
	last := -1.0
	for _, e := range evs[1:] {
		if e.Stage == "augment" && e.Progress < last {
			t.Fatalf("progress went back: %v after %v", e.Progress, last)
		}
		if e.Stage == "augment" {
			last = e.Progress
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "data-processed/images"))
	if len(ents) != 48 {
		t.Fatalf("%d processed images, want 48", len(ents))
	}

	end, _ = run("dataset", `{"name": "ds"}`)
	if end.State != api.JobSucceeded || end.Metrics["images_total"] != 48 {
		t.Fatalf("dataset ended %+v", end)
	}
	if _, err := os.Stat(filepath.Join(root, "datasets/ds/data.yaml")); err != nil {
		t.Fatal(err)
	}

	// A job that fails reports its error.
	end, _ = run("dataset", `{"name": "ds2", "train": 0.9, "valid": 0.1, "test": 0}`)
	if end.State != api.JobSucceeded {
		t.Fatalf("%+v", end)
	}
	os.RemoveAll(filepath.Join(root, "data-processed"))
	end, _ = run("dataset", "")
	if end.State != api.JobFailed || end.Error == "" {
		t.Fatalf("dataset without data ended %+v", end)
	}
	list, err := c.ListJobs(ctx)
	if err != nil || len(list) != 5 || list[0].ID != end.ID {
		t.Fatalf("list %d jobs, %v", len(list), err)
	}
}

// TestJobsCancel cancels a watching augment job with DELETE and sees the
// SSE stream end with the canceled state.
func TestJobsCancel(t *testing.T) {
	root := t.TempDir()
	writeData(t, root, 2)
	m, c := newServer(t, launch(t), root)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := c.CreateJob(ctx, api.JobRequest{Type: "augment", Params: json.RawMessage(`{"watch": true, "watch_seconds": 0.2}`)})
	if err != nil {
		t.Fatal(err)
	}
	// A second augment job conflicts while the first runs.
	if _, err := c.CreateJob(ctx, api.JobRequest{Type: "augment"}); !api.IsStatus(err, http.StatusConflict) {
		t.Fatalf("second augment job: %v, want 409", err)
	}
	seenWatch := make(chan struct{})
	done := make(chan *api.Job, 1)
	go func() {
		once := false
		end, err := c.WatchJob(ctx, j.ID, func(ev api.JobEvent) error {
			if ev.Stage == "watch" && !once {
				once = true
				close(seenWatch)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- end
	}()
	select {
	case <-seenWatch:
	case <-ctx.Done():
		t.Fatal("the watch job never finished its first pass")
	}
	if _, err := c.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	end := <-done
	if end == nil || end.State != api.JobCanceled || end.Finished == nil {
		t.Fatalf("ended %+v", end)
	}
	got, _ := m.Get(j.ID)
	if got.State != api.JobCanceled {
		t.Fatalf("state %s", got.State)
	}
	// Events of a finished job: only the end event.
	end2, err := c.WatchJob(ctx, j.ID, nil)
	if err != nil || end2.State != api.JobCanceled {
		t.Fatal(end2, err)
	}
}

func TestJobsBadRequests(t *testing.T) {
	_, c := newServer(t, jobs.PluginRunner(downPlugin{}), t.TempDir())
	ctx := context.Background()
	tests := []struct {
		name   string
		req    api.JobRequest
		status int
	}{
		{"unknown type", api.JobRequest{Type: "fly"}, 400},
		{"bad train param", api.JobRequest{Type: "train", Params: json.RawMessage(`{"imgsz": 100}`)}, 400},
		{"reserved train arg", api.JobRequest{Type: "train", Params: json.RawMessage(`{"args": {"data": "x.yaml"}}`)}, 400},
		{"export without run", api.JobRequest{Type: "export"}, 400},
		{"bad export format", api.JobRequest{Type: "export", Params: json.RawMessage(`{"run": "r", "formats": ["tflite"]}`)}, 400},
		{"bad chained stage", api.JobRequest{Type: "train", Then: []api.JobRequest{{Type: "export", Params: json.RawMessage(`{"formats": ["x"]}`)}}}, 400},
		{"chain on a data job", api.JobRequest{Type: "augment", Then: []api.JobRequest{{Type: "gate"}}}, 400},
		{"params not an object", api.JobRequest{Type: "augment", Params: json.RawMessage(`[1]`)}, 400},
		{"bad param", api.JobRequest{Type: "augment", Params: json.RawMessage(`{"jpeg_quality": 0}`)}, 400},
		{"bad split", api.JobRequest{Type: "dataset", Params: json.RawMessage(`{"train": 2}`)}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.CreateJob(ctx, tc.req); !api.IsStatus(err, tc.status) {
				t.Fatalf("err = %v, want %d", err, tc.status)
			}
		})
	}
	for _, f := range []func() error{
		func() error { _, err := c.GetJob(ctx, "nope"); return err },
		func() error { _, err := c.CancelJob(ctx, "nope"); return err },
		func() error { _, err := c.WatchJob(ctx, "nope", nil); return err },
	} {
		if err := f(); !api.IsStatus(err, 404) {
			t.Fatalf("unknown job: %v, want 404", err)
		}
	}
	// A plugin that is down fails the job with the reason.
	j, err := c.CreateJob(ctx, api.JobRequest{Type: "validate"})
	if err != nil {
		t.Fatal(err)
	}
	end, err := c.WatchJob(ctx, j.ID, nil)
	if err != nil || end.State != api.JobFailed || end.Error == "" {
		t.Fatalf("%+v %v", end, err)
	}
}

type downPlugin struct{}

func (downPlugin) Get() (trainer.Trainer, error) {
	return nil, errors.New("plugin is not running: trainer down")
}

// TestAutoWatch keeps a watching augment job running from Run: it retries
// while the plugin is down, then augments new images as they arrive.
func TestAutoWatch(t *testing.T) {
	root := t.TempDir()
	writeData(t, root, 1)
	os.Remove(filepath.Join(root, "data/images/broken.jpg"))
	sw := &switchRunner{}
	m := jobs.New(sw, jobs.Options{DataRoot: root, AutoWatch: true, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Defaults: map[string]json.RawMessage{"augment": json.RawMessage(`{"watch_seconds": 0.1, "workers": 1}`)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("failed attempts while the plugin is down", func() bool { return len(m.List()) >= 2 })
	sw.set(jobs.PluginRunner(readyPlugin{launch(t)}))
	processed := func(n int) func() bool {
		return func() bool {
			e, _ := os.ReadDir(filepath.Join(root, "data-processed/labels"))
			return len(e) == n
		}
	}
	defer func() {
		if t.Failed() {
			for _, j := range m.List() {
				t.Logf("%s %s %s %s", j.ID, j.Type, j.State, j.Error)
			}
		}
	}()
	waitFor("the first image augmented", processed(8))
	writeData(t, root, 2) // adds im01
	os.Remove(filepath.Join(root, "data/images/broken.jpg"))
	waitFor("the new image augmented", processed(16))
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, j := range m.List() {
		if !j.State.Final() {
			t.Fatalf("job %s still %s after Run returned", j.ID, j.State)
		}
	}
}

// switchRunner runs jobs on the Runner set last (down until set).
type switchRunner struct {
	mu sync.Mutex
	r  jobs.Runner
}

func (s *switchRunner) set(r jobs.Runner) { s.mu.Lock(); s.r = r; s.mu.Unlock() }

func (s *switchRunner) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	s.mu.Lock()
	r := s.r
	s.mu.Unlock()
	if r == nil {
		return jobs.PluginRunner(downPlugin{}).StartJob(ctx, spec, emit)
	}
	return r.StartJob(ctx, spec, emit)
}

type readyPlugin struct{ t trainer.Trainer }

func (p readyPlugin) Get() (trainer.Trainer, error) { return p.t, nil }
