package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// TestServeAndDetectCLI runs the real binaries: `azaion serve` configured
// only through the environment, then `azaion detect` over the Unix socket,
// as a table and as JSON; SIGTERM stops the daemon cleanly.
func TestServeAndDetectCLI(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	plugin := testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Model(t, "yolo11n_int8.onnx"), filepath.Join(models, "yolo11n_int8.onnx")); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeTCPAddr(t)
	sock := filepath.Join(dir, "azaion.sock")
	env := append(os.Environ(),
		"AZAION_CONFIG="+filepath.Join(dir, "azaion.yaml"),
		"AZAION_HTTP_ADDR="+addr,
		"AZAION_SOCKET="+sock,
		"AZAION_MODELS_DIR="+models,
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"),
		"AZAION_PLUGIN_DIR="+filepath.Dir(plugin),
		"AZAION_ORT_LIB="+testenv.ORTLib(t),
		"AZAION_LOG_FORMAT=json",
	)
	// A generous max_queue_wait: on a loaded machine one slow inference must
	// not make the next single request a 429 (admission is tested in sched).
	if err := os.WriteFile(filepath.Join(dir, "azaion.yaml"), []byte("limits:\n  queue_size: 8\n  max_queue_wait: 60s\nonnx:\n  intra_op_threads: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serve := startProc(t, azaion, env, "serve")
	c := api.NewSocketClient(sock)
	waitUntil(t, 2*time.Minute, "daemon ready", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.Ready(ctx)
	})

	bus := testenv.Model(t, "images/bus.jpg")
	detect := func(args ...string) string {
		t.Helper()
		return runCLI(t, azaion, env, append([]string{"detect"}, args...)...)
	}
	table := detect(bus)
	for _, want := range []string{"810x1080", "yolo11n_int8", "LABEL", "bus", "person"} {
		if !strings.Contains(table, want) {
			t.Errorf("table output lacks %q:\n%s", want, table)
		}
	}
	var res struct {
		File string `json:"file"`
		api.DetectResponse
	}
	if err := json.Unmarshal([]byte(detect("--json", bus)), &res); err != nil {
		t.Fatal(err)
	}
	yolotest.Match(t, yolotest.FromAPI(res.Detections), yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg"))

	// A missing file is reported by name, with a non-zero exit.
	cmd := exec.Command(azaion, "detect", filepath.Join(dir, "missing.jpg"))
	cmd.Env = env
	missing, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(missing), "missing.jpg") {
		t.Fatalf("detect of a missing file: %v\n%s", err, missing)
	}

	// `models import` while the daemon runs goes through it: the model is
	// served as soon as the command returns, without a signal.
	out := runCLI(t, azaion, env, "models", "import", "--name", "imported", testenv.Model(t, "yolo11n_int8_nms.onnx"))
	if !strings.Contains(out, "through the running daemon") || !strings.Contains(out, "served now") {
		t.Fatalf("models import with a daemon:\n%s", out)
	}
	if res, err := c.Detect(context.Background(), mustRead(t, bus), api.DetectOptions{Model: "imported"}); err != nil || len(res.Detections) == 0 {
		t.Fatalf("detect with the model just imported: %v %+v", err, res)
	}
	if ms, err := c.Models(context.Background()); err != nil || !hasModel(ms, "imported", "store:imported:1") {
		t.Fatalf("models after the import: %+v %v", ms, err)
	}

	// SIGHUP picks up a model file dropped into the models folder, without
	// a restart.
	if err := os.Symlink(testenv.Model(t, "yolo11n_dequant_fp32.onnx"), filepath.Join(models, "dropped.onnx")); err != nil {
		t.Fatal(err)
	}
	if err := serve.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "model dropped served after SIGHUP", func() error {
		res, err := c.Detect(context.Background(), mustRead(t, bus), api.DetectOptions{Model: "dropped"})
		if err == nil && len(res.Detections) == 0 {
			err = errors.New("no detections")
		}
		return err
	})

	// SIGTERM drains and exits 0, removing the socket; logs are JSON.
	if err := serve.stop(t); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind after exit: %v", err)
	}
	first := strings.SplitN(serve.logs.String(), "\n", 2)[0]
	if !json.Valid([]byte(first)) {
		t.Errorf("first log line is not JSON: %s", first)
	}
}

// hasModel reports whether the daemon lists name, served from origin.
func hasModel(ms *api.ModelsResponse, name, origin string) bool {
	for _, m := range ms.Models {
		if m.Name == name && strings.HasPrefix(m.Origin, origin) {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "serve") || !strings.Contains(out.String(), "detect") {
		t.Fatalf("usage: code %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: code %d, stderr %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"detect"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no images") {
		t.Fatalf("detect without images: code %d, stderr %s", code, errb.String())
	}
}
