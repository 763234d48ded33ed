package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient/apitest"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// TestModelsPublishPullServe runs the real binaries against the fake REST API
// and the real S3 server: `azaion models publish`, then `azaion models pull`
// through a running daemon, which loads the model from memory and detects
// bus.jpg like the reference; then the daemon restarts with the API and the
// CDN down and still serves the model from its encrypted store.
func TestModelsPublishPullServe(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	plugin := testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	const email, password = "edge@example.com", "pull-test-password"
	srv := apitest.New(t, map[string]string{email: password})
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	cfgFile := filepath.Join(dir, "azaion.yaml")
	os.WriteFile(cfgFile, []byte("limits:\n  max_queue_wait: 60s\nonnx:\n  intra_op_threads: 2\n"), 0o644)
	sock := filepath.Join(dir, "azaion.sock")
	addr := testenv.FreeTCPAddr(t)
	s3key, s3secret := testenv.Env(t, "AZAION_TEST_S3_ACCESS_KEY", "the S3 server"), testenv.Env(t, "AZAION_TEST_S3_SECRET_KEY", "the S3 server")
	env := append(os.Environ(),
		"AZAION_CONFIG="+cfgFile,
		"AZAION_HTTP_ADDR="+addr,
		"AZAION_SOCKET="+sock,
		"AZAION_MODELS_DIR="+filepath.Join(dir, "models"),
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"),
		"AZAION_PLUGIN_DIR="+filepath.Dir(plugin),
		"AZAION_ORT_LIB="+testenv.ORTLib(t),
		"AZAION_API_URL="+srv.URL,
		"AZAION_API_CA_FILE="+srv.CAFile,
		"AZAION_API_EMAIL="+email,
		"AZAION_API_PASSWORD="+password,
		"AZAION_CDN_ENDPOINT="+testenv.Env(t, "AZAION_TEST_S3_ENDPOINT", "the S3 server (versitygw)"),
		fmt.Sprintf("AZAION_CDN_BUCKET=cli-test-%d", time.Now().UnixNano()),
		"AZAION_CDN_READ_KEY_ID="+s3key, "AZAION_CDN_READ_SECRET="+s3secret,
		"AZAION_CDN_WRITE_KEY_ID="+s3key, "AZAION_CDN_WRITE_SECRET="+s3secret,
	)
	cli := func(env []string, args ...string) string {
		t.Helper()
		return runCLI(t, azaion, env, args...)
	}
	out := cli(env, "models", "publish", testenv.Model(t, "yolo11n_int8.onnx"), "--name", "yolo", "--version", "1")
	if !strings.Contains(out, "published yolo:1") {
		t.Fatalf("publish: %s", out)
	}

	serve := func(env []string) (stop func()) {
		t.Helper()
		p := startProc(t, azaion, env, "serve")
		c := api.NewSocketClient(sock)
		waitUntil(t, time.Minute, "daemon answers", func() error {
			_, err := c.Models(context.Background())
			return err
		})
		return func() {
			if err := p.stop(t); err != nil {
				t.Errorf("daemon exit after SIGTERM: %v", err)
			}
		}
	}
	detectBus := func() {
		t.Helper()
		c := api.NewSocketClient(sock)
		waitUntil(t, 2*time.Minute, "daemon ready", func() error { return c.Ready(context.Background()) })
		img, _ := os.ReadFile(testenv.Model(t, "images/bus.jpg"))
		res, err := c.Detect(context.Background(), img, api.DetectOptions{Model: "yolo"})
		if err != nil {
			t.Fatal(err)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg"))
	}

	stop := serve(env)
	out = cli(env, "models", "pull", "yolo:1")
	if !strings.Contains(out, "loaded") {
		t.Fatalf("pull through the daemon: %s", out)
	}
	detectBus()
	stop()

	// Without a daemon, `models import` writes the store itself and says so.
	out = cli(env, "models", "import", "--name", "offline", testenv.Model(t, "yolo11n_int8_nms.onnx"))
	if !strings.Contains(out, "daemon not reachable") || !strings.Contains(out, "imported offline:1") ||
		!strings.Contains(out, filepath.Join(dir, "state")) {
		t.Fatalf("models import without a daemon:\n%s", out)
	}

	// The API and the CDN go down; the restarted daemon serves the cached
	// model and the one imported meanwhile.
	srv.Close()
	down := append(env[:len(env):len(env)], "AZAION_CDN_ENDPOINT=http://127.0.0.1:1")
	stop = serve(down)
	defer stop()
	detectBus()
	ms, err := api.NewSocketClient(sock).Models(context.Background())
	if err != nil || len(ms.Models) != 2 || !hasModel(ms, "yolo", "store:yolo:1") || !hasModel(ms, "offline", "store:offline:1") {
		t.Fatalf("models after restart: %+v %v", ms, err)
	}
	if list := cli(down, "models", "list"); !strings.Contains(list, "yolo") || !strings.Contains(list, "pull") {
		t.Fatalf("models list: %s", list)
	}
}
