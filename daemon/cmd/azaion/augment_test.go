package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
)

func TestFormatProgress(t *testing.T) {
	tests := []struct {
		ev   api.JobEvent
		want string
	}{
		{api.JobEvent{Progress: 0.5, Stage: "augment", Metrics: map[string]float64{"images_done": 5, "images_total": 10, "images_per_s": 2.5, "eta_s": 2}},
			"[#####.....]  50%  5/10  2.5 img/s  ETA 0:02  augment"},
		{api.JobEvent{Progress: 1, Stage: "done", Message: "ok"}, "[##########] 100%  done: ok"},
		{api.JobEvent{Progress: 0.01, Metrics: map[string]float64{"eta_s": 3725}}, "[..........]   1%  ETA 1:02:05"},
	}
	for _, tc := range tests {
		if got := formatProgress(tc.ev, 10); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// writeJPEGs writes n labelled 640x360 JPEGs to dir/images and dir/labels.
func writeJPEGs(t *testing.T, dir string, n int) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "images"), 0o755)
	os.MkdirAll(filepath.Join(dir, "labels"), 0o755)
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 640, 360))
		for y := 0; y < 360; y++ {
			for x := 0; x < 640; x++ {
				img.Set(x, y, color.RGBA{uint8(x / 3), uint8(y / 2), uint8(i * 20), 255})
			}
		}
		var b bytes.Buffer
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
		os.WriteFile(filepath.Join(dir, "images", fmt.Sprintf("photo%02d.jpg", i)), b.Bytes(), 0o644)
		os.WriteFile(filepath.Join(dir, "labels", fmt.Sprintf("photo%02d.txt", i)), []byte("0 0.3 0.3 0.2 0.2\n41 0.6 0.6 0.1 0.3\n"), 0o644)
	}
}

// TestTrainerCLI runs the real binaries: `azaion serve` with the trainer
// enabled (ONNX off), then `azaion validate`, `azaion augment` and
// `azaion dataset build` over the Unix socket, and the local data tools.
func TestTrainerCLI(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	plugin := testenv.Binary(t, "plugins/trainer/cmd/azaion-plugin-trainer")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	writeJPEGs(t, filepath.Join(data, "data"), 5)
	sock := filepath.Join(dir, "azaion.sock")
	cfg := filepath.Join(dir, "azaion.yaml")
	os.WriteFile(cfg, []byte("onnx:\n  enabled: false\ntrainer:\n  enabled: true\n  augment:\n    workers: 2\n    seed: 3\n"), 0o644)
	env := append(os.Environ(),
		"AZAION_CONFIG="+cfg,
		"AZAION_HTTP_ADDR=",
		"AZAION_SOCKET="+sock,
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"),
		"AZAION_MODELS_DIR="+filepath.Join(dir, "models"),
		"AZAION_PLUGIN_DIR="+filepath.Dir(plugin),
		"AZAION_DATA_DIR="+data,
		"AZAION_LOG_FORMAT=json",
	)
	serve := startProc(t, azaion, env, "serve")

	cli := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(azaion, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	// Wait until the trainer plugin serves jobs.
	c := api.NewSocketClient(sock)
	deadline := time.Now().Add(time.Minute)
	waitUntil(t, time.Minute, "daemon serves /v1/jobs", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.ListJobs(ctx)
		return err
	})

	// The plugin may still be starting: validate retries until it is ready.
	var out, errOut string
	var err error
	for time.Now().Before(deadline) {
		if out, errOut, err = cli("validate"); err == nil || !strings.Contains(errOut, "not running") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "validate job") {
		t.Fatalf("validate: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = cli("augment", "--variants", "7")
	if err != nil || !strings.Contains(out, "succeeded") {
		t.Fatalf("augment: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "100%") || !strings.Contains(errOut, "img/s") {
		t.Fatalf("augment progress lines: %q", errOut)
	}
	ents, _ := os.ReadDir(filepath.Join(data, "data-processed", "images"))
	if len(ents) != 40 {
		t.Fatalf("%d processed images, want 40", len(ents))
	}
	out, errOut, err = cli("dataset", "build", "--split", "60/20/20", "--name", "cli")
	if err != nil || !strings.Contains(out, "succeeded") {
		t.Fatalf("dataset build: %v\n%s\n%s", err, out, errOut)
	}
	n := 0
	for _, s := range []string{"train", "valid", "test"} {
		e, _ := os.ReadDir(filepath.Join(data, "datasets", "cli", s, "images"))
		n += len(e)
	}
	if n != 40 {
		t.Fatalf("dataset holds %d images, want 40", n)
	}
	if _, _, err := cli("dataset", "build", "--split", "60/20"); err == nil {
		t.Fatal("a bad --split was accepted")
	}

	// Local data tools on the dataset just made.
	show := filepath.Join(dir, "show")
	out, errOut, err = cli("dataset", "show", "--out", show, "--thumb", "160", filepath.Join(data, "datasets", "cli"))
	if err != nil || !strings.Contains(out, "40 images") {
		t.Fatalf("dataset show: %v\n%s\n%s", err, out, errOut)
	}
	coco := filepath.Join(dir, "coco.json")
	if out, errOut, err = cli("annotations", "convert", "-from", "yolo", "-to", "coco", filepath.Join(data, "datasets", "cli", "train"), coco); err != nil {
		t.Fatalf("convert: %v\n%s\n%s", err, out, errOut)
	}
	if out, errOut, err = cli("annotations", "convert", "-from", "coco", "-to", "yolo", coco, filepath.Join(dir, "labels")); err != nil || !strings.Contains(out, "converted") {
		t.Fatalf("convert back: %v\n%s\n%s", err, out, errOut)
	}

	if err := serve.stop(t); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}
