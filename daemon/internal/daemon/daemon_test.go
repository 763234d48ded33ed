package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// harness is a daemon running in this process with the real ONNX plugin.
type harness struct {
	d      *Daemon
	cfg    *config.Config
	http   *api.Client
	sock   *api.Client
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startDaemon serves the given shared test models (linked into a models
// folder) and waits until the daemon is ready.
func startDaemon(t testing.TB, models []string, tweak func(*config.Config)) *harness {
	t.Helper()
	h := launchDaemon(t, models, tweak)
	h.waitReady(t, 3*time.Minute)
	return h
}

// launchDaemon starts the daemon without waiting for it to be ready.
func launchDaemon(t testing.TB, models []string, tweak func(*config.Config)) *harness {
	t.Helper()
	plugins := filepath.Dir(testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx"))
	dir := t.TempDir()
	modelsDir := filepath.Join(dir, "models")
	if err := os.MkdirAll(modelsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		if err := os.Symlink(testenv.Model(t, m), filepath.Join(modelsDir, m)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.HTTP.Addr = testenv.FreeTCPAddr(t)
	cfg.Socket.Path = filepath.Join(dir, "azaion.sock")
	cfg.Paths.Models = modelsDir
	cfg.Paths.State = filepath.Join(dir, "state")
	cfg.Paths.Plugins = plugins
	cfg.ONNX.Library = testenv.ORTLib(t)
	cfg.ONNX.IntraOpThreads = 2
	cfg.Limits.MaxBodyBytes = 8 << 20
	cfg.Log.Level = "warn"
	if tweak != nil {
		tweak(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := New(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{d: d, cfg: &cfg, base: "http://" + cfg.HTTP.Addr, cancel: cancel, done: make(chan error, 1),
		http: api.NewHTTPClient("http://"+cfg.HTTP.Addr, ""), sock: api.NewSocketClient(cfg.Socket.Path)}
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop within 30s")
		}
	})
	return h
}

func (h *harness) waitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = h.http.Ready(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("daemon not ready after %s: %v", within, err)
}

func busJPEG(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Model(t, "images/bus.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ref(t *testing.T, model string) yolotest.Image {
	return yolotest.Load(t, testenv.Model(t, strings.TrimSuffix(model, ".onnx")+".ref.json"), "bus.jpg")
}

func TestServeDetect(t *testing.T) {
	h := startDaemon(t, []string{"yolo11n_int8.onnx", "yolo11n_int8_nms.onnx", "yolo11n_dequant_fp32.onnx", "yolo11n_1280_fp32.onnx"}, func(c *config.Config) {
		// Requests decode and letterbox in parallel before they queue; give
		// four HTTP requests time to meet in one batch.
		c.ONNX.BatchWait = 100 * time.Millisecond
		// Admission by expected wait is not what these tests check: under a
		// loaded CI a lone request took 250 ms, and four at once then made an
		// expected wait over the default 1 s (429 for the fourth).
		c.Limits.MaxQueueWait = time.Minute
	})
	ctx := context.Background()
	bus := busJPEG(t)

	t.Run("Models", func(t *testing.T) {
		ms, err := h.sock.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]api.Model{}
		for _, m := range ms.Models {
			got[m.Name] = m
		}
		for name, want := range map[string]struct{ input, output string }{
			"yolo11n_int8":         {"640x640", "yolo-raw"},
			"yolo11n_int8_nms":     {"640x640", "yolo-nms"},
			"yolo11n_dequant_fp32": {"640x640", "yolo-raw"},
			"yolo11n_1280_fp32":    {"1280x1280", "yolo-raw"},
		} {
			m := got[name]
			if m.State != "ready" || m.Input != want.input || m.Output != want.output || m.Classes != 80 {
				t.Errorf("model %s: %+v, want ready %s %s with 80 classes", name, m, want.input, want.output)
			}
		}
		bs, err := h.http.Backends(ctx)
		if err != nil || len(bs.Backends) != 1 || bs.Backends[0].State != "ready" || len(bs.Backends[0].Devices) == 0 {
			t.Fatalf("backends: %+v %v", bs, err)
		}
	})

	for _, m := range []string{"yolo11n_int8", "yolo11n_int8_nms", "yolo11n_1280_fp32"} {
		t.Run("HTTP/"+m, func(t *testing.T) {
			res, err := h.http.Detect(ctx, bus, api.DetectOptions{Model: m})
			if err != nil {
				t.Fatal(err)
			}
			if res.Image.Width != 810 || res.Image.Height != 1080 || res.Model != m || res.Backend != "onnx" {
				t.Fatalf("response %+v", res)
			}
			yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, m))
			if res.TimingsMS.Infer <= 0 || res.TimingsMS.Total < res.TimingsMS.Infer {
				t.Errorf("timings %+v", res.TimingsMS)
			}
		})
	}
	t.Run("Socket/multipart", func(t *testing.T) {
		res, err := h.sock.DetectMultipart(ctx, "bus.jpg", bus, api.DetectOptions{Model: "yolo11n_int8", Conf: 0.25})
		if err != nil {
			t.Fatal(err)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, "yolo11n_int8"))
		for _, d := range res.Detections {
			if d.Label == "" {
				t.Fatalf("detection without label: %+v", d)
			}
		}
	})
	t.Run("SocketMode", func(t *testing.T) {
		st, err := os.Stat(h.cfg.Socket.Path)
		if err != nil || st.Mode().Perm() != 0o660 {
			t.Fatalf("socket mode %v %v, want 0660", st.Mode().Perm(), err)
		}
	})
	t.Run("Filters", func(t *testing.T) {
		res, err := h.http.Detect(ctx, bus, api.DetectOptions{Model: "yolo11n_int8", Classes: []int{5}, Conf: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Detections) != 1 || res.Detections[0].Label != "bus" {
			t.Fatalf("classes=5 conf=0.5: %+v, want the bus alone", res.Detections)
		}
		res, err = h.http.Detect(ctx, bus, api.DetectOptions{Model: "yolo11n_int8", MaxDet: 2})
		if err != nil || len(res.Detections) != 2 {
			t.Fatalf("max_det=2: %d detections, %v", len(res.Detections), err)
		}
	})
	t.Run("ConcurrentBatch", func(t *testing.T) {
		alone, err := h.http.Detect(ctx, bus, api.DetectOptions{Model: "yolo11n_dequant_fp32"})
		if err != nil {
			t.Fatal(err)
		}
		yolotest.Match(t, yolotest.FromAPI(alone.Detections), ref(t, "yolo11n_dequant_fp32"))
		// Four concurrent requests: at least one attempt must run as one
		// batch of 4 (the backend waits batch_wait for a batch to fill), and
		// every answer equals the one alone.
		batched := false
		for attempt := 0; attempt < 5 && !batched; attempt++ {
			var wg sync.WaitGroup
			res := make([]*api.DetectResponse, 4)
			errs := make([]error, 4)
			start := make(chan struct{})
			for i := range 4 {
				wg.Go(func() {
					<-start
					res[i], errs[i] = h.http.Detect(ctx, bus, api.DetectOptions{Model: "yolo11n_dequant_fp32"})
				})
			}
			close(start)
			wg.Wait()
			all4 := true
			for i := range 4 {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if yolotest.Format(yolotest.FromAPI(res[i].Detections)) != yolotest.Format(yolotest.FromAPI(alone.Detections)) {
					t.Fatalf("request %d in a batch differs from the request alone", i)
				}
				all4 = all4 && res[i].BatchSize == 4
				// Decoding overlaps inference; no stage is counted twice.
				tm := res[i].TimingsMS
				if sum := tm.Queue + tm.Decode + tm.Preprocess + tm.Infer + tm.Postprocess; sum > tm.Total+0.002 || tm.Decode <= 0 || tm.Infer <= 0 {
					t.Errorf("request %d: stages %+v add up to %.3f ms, over the total", i, tm, sum)
				}
			}
			batched = all4
		}
		if !batched {
			t.Fatal("four concurrent requests never ran as one batch of 4")
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		resp, err := http.Get(h.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, want := range []string{`azaion_detect_requests_total{code="ok",model="yolo11n_int8"}`, "azaion_inference_queue_duration_us", "azaion_inference_compute_infer_duration_us"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

func encodeJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugeHeaderJPEG is a small JPEG whose SOF0 header claims w x h pixels.
func hugeHeaderJPEG(t *testing.T, w, h int) []byte {
	b := encodeJPEG(t, 16, 16)
	for i := 2; i+9 < len(b); i++ {
		if b[i] == 0xFF && b[i+1] == 0xC0 {
			b[i+5], b[i+6] = byte(h>>8), byte(h)
			b[i+7], b[i+8] = byte(w>>8), byte(w)
			return b
		}
	}
	t.Fatal("no SOF0 marker")
	return nil
}

func onePixelPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func vmHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func TestBadInput(t *testing.T) {
	h := startDaemon(t, []string{"yolo11n_int8.onnx"}, nil)
	ctx := context.Background()
	bus := busJPEG(t)
	bs, err := h.http.Backends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := bs.Backends[0].PID
	before := vmHWM(t, pid)

	cases := []struct {
		name   string
		body   []byte
		query  string
		status int
		msg    string
	}{
		{"empty body", nil, "", 400, "empty body"},
		{"truncated JPEG", bus[:len(bus)/2], "", 422, "truncated"},
		{"text file", []byte("just some text, not an image\n"), "", 415, "not a JPEG"},
		{"1x1 image", onePixelPNG(t), "", 422, "1x1"},
		{"30000x30000 header", hugeHeaderJPEG(t, 30000, 30000), "", 422, "900000000 pixels"},
		{"too large body", make([]byte, 9<<20), "", 413, "limit"},
		{"unknown model", bus, "model=nope", 404, "nope"},
		{"bad conf", bus, "conf=2", 400, "conf"},
		{"bad classes", bus, "classes=a,b", 400, "classes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(h.base+"/v1/detect?"+tc.query, "application/octet-stream", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.msg) || !strings.Contains(string(b), `"code"`) {
				t.Fatalf("status %d body %s: want %d mentioning %q", resp.StatusCode, b, tc.status, tc.msg)
			}
		})
	}
	// Nothing crashed: the same plugin process still serves, and its peak
	// memory did not grow by anything like a decoded 30000x30000 image (2.7 GB).
	res, err := h.http.Detect(ctx, bus, api.DetectOptions{})
	if err != nil || len(res.Detections) == 0 {
		t.Fatalf("detect after bad input: %v", err)
	}
	bs, _ = h.http.Backends(ctx)
	if bs.Backends[0].PID != pid || bs.Backends[0].Restarts != 0 {
		t.Fatalf("plugin restarted during bad input: %+v", bs.Backends[0])
	}
	if grow := vmHWM(t, pid) - before; grow > 256<<20 {
		t.Fatalf("plugin peak memory grew by %d MiB on bad input", grow>>20)
	}
}

func TestNoModels(t *testing.T) {
	h := startDaemon(t, nil, nil)
	ms, err := h.http.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Models) != 0 || !strings.Contains(ms.Hint, h.cfg.Paths.Models) {
		t.Fatalf("models %+v: want none and a hint naming %s", ms, h.cfg.Paths.Models)
	}
	_, err = h.http.Detect(context.Background(), busJPEG(t), api.DetectOptions{})
	if !api.IsStatus(err, 503) {
		t.Fatalf("detect without models: %v, want 503", err)
	}
}

func TestPluginCrash(t *testing.T) {
	h := startDaemon(t, []string{"yolo11n_1280_fp32.onnx"}, func(c *config.Config) {
		c.ONNX.IntraOpThreads = 1 // slow enough to kill it mid-request
	})
	ctx := context.Background()
	bus := busJPEG(t)
	bs, err := h.http.Backends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := bs.Backends[0].PID
	if pid == 0 {
		t.Fatal("no plugin pid")
	}
	errc := make(chan error, 1)
	go func() {
		_, err := h.http.Detect(ctx, bus, api.DetectOptions{})
		errc <- err
	}()
	time.Sleep(150 * time.Millisecond) // the request is in the plugin, inferring (1280 px, one thread: several hundred ms)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	err = <-errc
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != 503 || !strings.Contains(se.Message, "relaunched") {
		t.Fatalf("request during the crash: %v, want 503 saying the backend is being relaunched", err)
	}
	if time.Since(killed) > 3*time.Second {
		t.Fatalf("the failed request took %s after the kill: want fail-fast", time.Since(killed))
	}
	time.Sleep(time.Until(killed.Add(5 * time.Second)))
	res, err := h.http.Detect(ctx, bus, api.DetectOptions{})
	if err != nil {
		t.Fatalf("request 5 s after the crash: %v", err)
	}
	yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, "yolo11n_1280_fp32"))
	bs, _ = h.http.Backends(ctx)
	if b := bs.Backends[0]; b.PID == pid || b.Restarts != 1 || b.State != "ready" {
		t.Fatalf("backend after relaunch: %+v", b)
	}
}

// TestTrainerNotABackend: the trainer plugin is not a detection backend: it
// is absent from /v1/backends, its state shows under /v1/jobs, and /readyz
// names it only because jobs are enabled and it is down.
func TestTrainerNotABackend(t *testing.T) {
	onnx := testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	plugins := t.TempDir() // the onnx plugin only: the trainer's binary is missing
	for _, suffix := range []string{"", ".sha256"} {
		if err := os.Symlink(onnx+suffix, filepath.Join(plugins, filepath.Base(onnx)+suffix)); err != nil {
			t.Fatal(err)
		}
	}
	h := launchDaemon(t, []string{"yolo11n_int8.onnx"}, func(c *config.Config) {
		c.Paths.Plugins = plugins
		c.Trainer.Enabled = true
		c.Data.Root = t.TempDir()
	})
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := h.http.Ready(ctx)
		var se *api.StatusError
		switch {
		case err == nil:
			t.Fatal("readyz says ready with the trainer down")
		case errors.As(err, &se) && (se.Status != 503 || se.RetryAfter == 0):
			t.Fatalf("readyz with the trainer down: %v, want 503 with Retry-After", err)
		case se != nil && strings.Contains(se.Message, "trainer plugin (jobs)") && !strings.Contains(se.Message, "model") &&
			!strings.Contains(se.Message, "backend"):
			// The model is ready before long; then the trainer is the only reason.
		default: // not listening yet, or the model is still loading
			if time.Now().After(deadline) {
				t.Fatalf("readyz: %v, want the trainer as the only reason", err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		break
	}
	bs, err := h.http.Backends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs.Backends) != 1 || bs.Backends[0].Name != "onnx" || bs.Backends[0].State != "ready" {
		t.Fatalf("backends: %+v, want only onnx, ready", bs.Backends)
	}
	var jobs api.JobList
	if err := h.http.Do(ctx, "GET", "/v1/jobs", nil, "", &jobs); err != nil {
		t.Fatal(err)
	}
	if tr := jobs.Trainer; tr == nil || tr.Name != "trainer" || tr.State == "ready" || !strings.Contains(tr.LastError, "azaion-plugin-trainer") {
		t.Fatalf("trainer state under /v1/jobs: %+v", tr)
	}
	if _, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{}); err != nil {
		t.Fatalf("detection with the trainer down: %v", err)
	}
}

// TestStuckPlugin: a plugin that stops making progress (here: stopped with
// SIGSTOP, then sent a detection) is killed and relaunched after the
// stuck timeout, long before its health checks would notice; the request
// fails with 503 and the kill is counted in /metrics.
func TestStuckPlugin(t *testing.T) {
	h := startDaemon(t, []string{"yolo11n_1280_fp32.onnx"}, func(c *config.Config) {
		c.ONNX.IntraOpThreads = 1
		c.Limits.StuckTimeout = 2 * time.Second
	})
	ctx := context.Background()
	bs, err := h.http.Backends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := bs.Backends[0].PID
	// Stopped before the request arrives, the plugin holds it without answering.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{})
		errc <- err
	}()
	err = <-errc
	if !api.IsStatus(err, 503) || time.Since(start) > 10*time.Second {
		t.Fatalf("request to a stopped plugin: %v after %s, want 503 within the stuck timeout", err, time.Since(start))
	}
	h.waitReady(t, time.Minute)
	bs, _ = h.http.Backends(ctx)
	if b := bs.Backends[0]; b.PID == pid || b.StuckKills != 1 {
		t.Fatalf("backend after the stuck kill: %+v", b)
	}
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `azaion_plugin_stuck_kills_total{plugin="onnx"} 1`) {
		t.Fatalf("metrics lack the stuck kill:\n%s", body)
	}
	if _, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{}); err != nil {
		t.Fatalf("after the relaunch: %v", err)
	}
}

// TestRecoverySixModels: after the plugin is killed, six models are served
// again quickly (they reload in parallel, the most recently used first).
func TestRecoverySixModels(t *testing.T) {
	files := []string{"yolo11n_1280_fp32.onnx", "yolo11n_dequant_fp32.onnx", "yolo11n_int8.onnx", "yolo11n_int8_nms.onnx"}
	h := startDaemon(t, files, func(c *config.Config) {
		for i, f := range []string{"yolo11n_int8.onnx", "yolo11n_dequant_fp32.onnx"} { // six models in all
			if err := os.Symlink(testenv.Model(t, f), filepath.Join(c.Paths.Models, fmt.Sprintf("copy%d.onnx", i))); err != nil {
				t.Fatal(err)
			}
		}
	})
	ctx := context.Background()
	ms, _ := h.http.Models(ctx)
	if len(ms.Models) != 6 {
		t.Fatalf("%d models, want 6", len(ms.Models))
	}
	if _, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{Model: "copy1"}); err != nil {
		t.Fatal(err)
	}
	bs, _ := h.http.Backends(ctx)
	if err := syscall.Kill(bs.Backends[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The most recently used model serves first.
	for {
		if _, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{Model: "copy1"}); err == nil {
			break
		}
		if time.Since(killed) > time.Minute {
			t.Fatal("copy1 not served a minute after the crash")
		}
		time.Sleep(50 * time.Millisecond)
	}
	first := time.Since(killed)
	h.waitReady(t, time.Minute)
	all := time.Since(killed)
	t.Logf("recovery with six models: the most recently used serves after %s, all after %s", first.Round(time.Millisecond), all.Round(time.Millisecond))
	if all > 15*time.Second {
		t.Errorf("recovery took %s", all)
	}
}

// TestModelLifecycle: with room for one model, a request for the other
// loads it and unloads the first; /v1/models shows the states, memory and
// last use; the load and unload routes work through the API.
func TestModelLifecycle(t *testing.T) {
	h := startDaemon(t, []string{"yolo11n_int8.onnx", "yolo11n_int8_nms.onnx"}, func(c *config.Config) {
		c.ONNX.MaxLoadedModels = 1
	})
	ctx := context.Background()
	state := func() map[string]api.Model {
		ms, err := h.http.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]api.Model{}
		for _, m := range ms.Models {
			out[m.Name] = m
		}
		return out
	}
	for _, name := range []string{"yolo11n_int8", "yolo11n_int8_nms"} {
		res, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{Model: name})
		if err != nil {
			t.Fatalf("detect with %s: %v", name, err)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, name))
		st := state()
		other := map[string]string{"yolo11n_int8": "yolo11n_int8_nms", "yolo11n_int8_nms": "yolo11n_int8"}[name]
		if m := st[name]; m.State != "ready" || m.Bytes <= 0 || m.LastUsed == nil {
			t.Fatalf("%s after use: %+v", name, m)
		}
		if st[other].State != "unloaded" {
			t.Fatalf("%s with %s loaded: %+v, want unloaded", other, name, st[other])
		}
	}
	m, err := h.http.UnloadModel(ctx, "yolo11n_int8_nms")
	if err != nil || m.State != "unloaded" {
		t.Fatalf("unload: %+v %v", m, err)
	}
	if m, err = h.http.LoadModel(ctx, "yolo11n_int8"); err != nil || m.State != "ready" {
		t.Fatalf("load: %+v %v", m, err)
	}
	if _, err := h.http.LoadModel(ctx, "nope"); !api.IsStatus(err, 404) {
		t.Fatalf("load of an unknown model: %v", err)
	}
	h.waitReady(t, 10*time.Second) // an unloaded model does not make the daemon unready
}

// hugePNG returns a small PNG (a few hundred KB) that decodes to side x side
// pixels.
func hugePNG(t testing.TB, side int) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.RGBA{40, 80, 120, 255}, color.RGBA{200, 10, 10, 255}})
	for y := 0; y < side; y += 97 {
		img.Pix[y*side+y%side] = 1
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHugeImagesBudget: 40 requests at once, each a small PNG that decodes
// to 100 megapixels: every answer is 200 or 429, the plugin's memory stays
// within its decode budget (plus what it held before), and nothing restarts.
func TestHugeImagesBudget(t *testing.T) {
	const budget = 700 << 20
	h := startDaemon(t, []string{"yolo11n_int8.onnx"}, func(c *config.Config) {
		c.ONNX.DecodeThreads = 4
		c.ONNX.DecodeBudget = budget
		c.ONNX.DecodeWait = time.Second
		c.Limits.MaxBodyBytes = 4 << 20
		c.Limits.MaxUploads = 64
	})
	ctx := context.Background()
	bs, _ := h.http.Backends(ctx)
	pid := bs.Backends[0].PID
	if _, err := h.http.Detect(ctx, busJPEG(t), api.DetectOptions{}); err != nil {
		t.Fatal(err)
	}
	before := peakRSS(pid)
	img := hugePNG(t, 10000)
	t.Logf("PNG of %d KB decoding to 10000x10000; plugin RSS before %d MiB", len(img)>>10, before>>20)
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for range 40 {
		wg.Go(func() {
			_, err := h.http.Detect(ctx, img, api.DetectOptions{})
			var se *api.StatusError
			switch {
			case err == nil:
				codes <- 200
			case errors.As(err, &se):
				codes <- se.Status
			default:
				t.Errorf("request failed: %v", err)
			}
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	after := peakRSS(pid)
	t.Logf("answers %v; plugin peak RSS %d MiB (before %d MiB, budget %d MiB)", count, after>>20, before>>20, budget>>20)
	if count[200]+count[429] != 40 || count[200] == 0 {
		t.Errorf("answers %v: want only 200 and 429, some 200", count)
	}
	if after-before > budget+200<<20 {
		t.Errorf("plugin peak RSS grew by %d MiB: over the %d MiB budget", (after-before)>>20, budget>>20)
	}
	bs, _ = h.http.Backends(ctx)
	if b := bs.Backends[0]; b.PID != pid || b.Restarts != 0 {
		t.Errorf("the plugin restarted: %+v", b)
	}
}
