package daemon

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// metric returns the value of the unlabelled series name in /metrics, and
// whether it is there.
func (h *harness) metric(t *testing.T, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f, true
		}
	}
	return 0, false
}

func (h *harness) wantMetric(t *testing.T, name string, want float64) {
	t.Helper()
	if got, ok := h.metric(t, name); !ok || got != want {
		t.Fatalf("%s = %v (present %v), want %v", name, got, ok, want)
	}
}

func (h *harness) onnxPID(t *testing.T) int {
	t.Helper()
	bs, err := h.http.Backends(context.Background())
	if err != nil || len(bs.Backends) != 1 || bs.Backends[0].PID == 0 {
		t.Fatalf("backends: %+v %v", bs, err)
	}
	return bs.Backends[0].PID
}

// TestSharedImages: with the shared image memory (the default), a raw
// detect body goes to the ONNX plugin by reference, with the detections the
// bytes path (a multipart body) gives; the plugin maps the memfd read-only
// and nothing of it is in the filesystem; a relaunched plugin gets it again.
func TestSharedImages(t *testing.T) {
	const m = "yolo11n_int8"
	h := startDaemon(t, []string{m + ".onnx"}, nil)
	ctx := context.Background()
	bus := busJPEG(t)

	viaBytes, err := h.sock.DetectMultipart(ctx, "bus.jpg", bus, api.DetectOptions{Model: m})
	if err != nil {
		t.Fatal(err)
	}
	h.wantMetric(t, "azaion_images_copied_total", 1)
	h.wantMetric(t, "azaion_images_shared_total", 0)
	viaShared, err := h.http.Detect(ctx, bus, api.DetectOptions{Model: m})
	if err != nil {
		t.Fatal(err)
	}
	h.wantMetric(t, "azaion_images_shared_total", 1)
	h.wantMetric(t, "azaion_images_copied_total", 1)
	h.wantMetric(t, "azaion_shared_images_bytes_in_use", 0)
	yolotest.Match(t, yolotest.FromAPI(viaShared.Detections), ref(t, m+".onnx"))
	if a, b := yolotest.Format(yolotest.FromAPI(viaShared.Detections)), yolotest.Format(yolotest.FromAPI(viaBytes.Detections)); a != b {
		t.Fatalf("detections by reference differ from those by bytes:\n%s\nvs\n%s", a, b)
	}

	// The plugin's mapping is shared and read-only; its fd 3 is the memfd,
	// which has no path.
	pid := h.onnxPID(t)
	maps, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.Contains(line, "memfd:azaion-images") {
			found = true
			if f := strings.Fields(line); f[1] != "r--s" {
				t.Fatalf("the plugin maps the shared images %s, want r--s: %s", f[1], line)
			}
		}
	}
	if !found {
		t.Fatal("the plugin has not mapped the shared image memory")
	}
	if link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/3"); err != nil || !strings.HasPrefix(link, "/memfd:azaion-images") {
		t.Fatalf("plugin fd 3: %q %v", link, err)
	}

	// A relaunched plugin gets the same memory again.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if bs, err := h.http.Backends(ctx); err == nil && bs.Backends[0].State == "ready" && bs.Backends[0].PID != pid {
			if _, err := h.http.Detect(ctx, bus, api.DetectOptions{Model: m}); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no detection within a minute of the plugin's crash")
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.wantMetric(t, "azaion_images_shared_total", 2)
}

// TestSharedImagesFallback: a body that finds the shared memory full, and
// every body when it is disabled, goes to the plugin as bytes.
func TestSharedImagesFallback(t *testing.T) {
	const m = "yolo11n_int8"
	bus := busJPEG(t)
	t.Run("full", func(t *testing.T) {
		h := startDaemon(t, []string{m + ".onnx"}, func(c *config.Config) { c.Limits.SharedImages = 64 << 10 })
		res, err := h.http.Detect(context.Background(), bus, api.DetectOptions{Model: m})
		if err != nil {
			t.Fatal(err)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, m+".onnx"))
		h.wantMetric(t, "azaion_images_shared_total", 0)
		h.wantMetric(t, "azaion_images_copied_total", 1)
		h.wantMetric(t, "azaion_shared_images_full_total", 1)
	})
	t.Run("disabled", func(t *testing.T) {
		h := startDaemon(t, []string{m + ".onnx"}, func(c *config.Config) { c.Limits.SharedImages = 0 })
		res, err := h.http.Detect(context.Background(), bus, api.DetectOptions{Model: m})
		if err != nil {
			t.Fatal(err)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), ref(t, m+".onnx"))
		if _, ok := h.metric(t, "azaion_images_shared_total"); ok {
			t.Fatal("shared image metrics with the shared memory disabled")
		}
		maps, _ := os.ReadFile("/proc/" + strconv.Itoa(h.onnxPID(t)) + "/maps")
		if strings.Contains(string(maps), "memfd:azaion-images") {
			t.Fatal("the plugin maps shared images that are disabled")
		}
	})
}
