package debtest

import (
	"context"
	"encoding/json"
	"fmt"
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

// arm64Sysroot is the arm64 sysroot `make deps` caches.
func arm64Sysroot(t *testing.T) string {
	t.Helper()
	sr := os.Getenv("AZAION_ARM64_SYSROOT")
	if sr == "" {
		sr = filepath.Join(cacheDir(), "sysroot-arm64-bookworm")
	}
	if _, err := os.Stat(filepath.Join(sr, ".azaion-sysroot")); err != nil {
		t.Fatalf("no arm64 sysroot at %s: run `make deps`: %v", sr, err)
	}
	return sr
}

// TestArm64UnderQemu runs the arm64 package's own binaries under qemu
// user-mode emulation (scripts/qemu-arm64.sh: no binfmt here): the arm64
// daemon launches the arm64 ONNX plugin with the arm64 ONNX Runtime, serves
// bus.jpg detections matching the reference over its socket, and
// `azaion version` reports the arm64 build and its runtime.
func TestArm64UnderQemu(t *testing.T) {
	debPath, version := deb(t, "arm64")
	root, _ := extract(t, debPath)
	sr := arm64Sysroot(t)
	qemu := filepath.Join(testenv.RepoRoot(t), "scripts", "qemu-arm64.sh")
	dir := t.TempDir()

	// The daemon execs its plugins; without binfmt an arm64 plugin runs
	// through a wrapper that calls qemu (the daemon checks the wrapper's
	// checksum; TestPackageContents checks the real plugin's).
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"azaion-plugin-onnx", "azaion-plugin-trainer"} {
		wrapper := filepath.Join(plugins, p)
		script := fmt.Sprintf("#!/bin/sh\nexport LD_LIBRARY_PATH=%s/lib/aarch64-linux-gnu:%s/usr/lib/aarch64-linux-gnu\nexec qemu-aarch64-static -L %s %s \"$@\"\n",
			sr, sr, sr, filepath.Join(root, "usr/lib/azaion/plugins", p))
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "sh", "-c", "cd "+plugins+" && sha256sum "+p+" >"+p+".sha256")
	}
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Model(t, "yolo11n_int8.onnx"), filepath.Join(models, "yolo11n_int8.onnx")); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "azaion.sock")
	cfg := filepath.Join(dir, "azaion.yaml")
	if err := os.WriteFile(cfg, []byte("socket: {group: root}\nlimits: {request_timeout: 10m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AZAION_CONFIG=" + cfg, "AZAION_HTTP_ADDR=",
		"AZAION_SOCKET=" + sock, "AZAION_PLUGIN_DIR=" + plugins, "AZAION_MODELS_DIR=" + models,
		"AZAION_STATE_DIR=" + filepath.Join(dir, "state"), "AZAION_ORT_LIB=" + filepath.Join(root, "usr/lib/azaion/libonnxruntime.so.1"),
		"AZAION_ARM64_SYSROOT=" + sr, "AZAION_LOG_FORMAT=json"}
	daemon := filepath.Join(root, "usr/bin/azaion")

	t.Run("version", func(t *testing.T) {
		cmd := exec.Command(qemu, daemon, "version", "--json", "--timeout", "5m")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("azaion version under qemu: %v\n%s", err, out)
		}
		var v struct {
			Daemon, Arch string
			Plugins      []struct{ Name, Version, Error string }
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if v.Daemon != version || v.Arch != "linux/arm64" || len(v.Plugins) != 2 {
			t.Fatalf("version: %s", out)
		}
		for _, p := range v.Plugins {
			if p.Error != "" || !strings.HasPrefix(p.Version, version) {
				t.Errorf("plugin %+v", p)
			}
			if p.Name == "onnx" && !strings.Contains(p.Version, "onnxruntime 1.30.0") {
				t.Errorf("onnx plugin %q does not report the arm64 runtime", p.Version)
			}
		}
	})

	t.Run("serve and detect", func(t *testing.T) {
		var logs syncBuffer
		cmd := exec.Command(qemu, daemon, "serve")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the daemon, its plugins and their qemus
			if t.Failed() {
				t.Logf("arm64 daemon output:\n%s", logs.String())
			}
		}()
		c := api.NewSocketClient(sock)
		deadline := time.Now().Add(10 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Ready(ctx)
			cancel()
			if err == nil {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("the arm64 daemon exited: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready within 10 minutes: %v", err)
			}
			time.Sleep(time.Second)
		}
		img, err := os.ReadFile(testenv.Model(t, "images/bus.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		res, err := c.Detect(ctx, img, api.DetectOptions{Model: "yolo11n_int8"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Image.Width != 810 || res.Image.Height != 1080 {
			t.Errorf("image %+v", res.Image)
		}
		yolotest.Match(t, yolotest.FromAPI(res.Detections), yolotest.Load(t, testenv.Model(t, "yolo11n_int8.ref.json"), "bus.jpg"))
		t.Logf("arm64 under qemu: %d detections, infer %.0f ms", len(res.Detections), res.TimingsMS.Infer)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("daemon exit after SIGTERM: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("the arm64 daemon did not stop within 2 minutes of SIGTERM")
		}
	})
}
