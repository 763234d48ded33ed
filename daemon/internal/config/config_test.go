package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvOverrides(t *testing.T) {
	c := Default()
	err := c.applyEnv(env(map[string]string{
		"AZAION_HTTP_ADDR":    "127.0.0.1:9999",
		"AZAION_SOCKET":       "/tmp/x.sock",
		"AZAION_MODELS_DIR":   "/m",
		"AZAION_STATE_DIR":    "/s",
		"AZAION_PLUGIN_DIR":   "/p",
		"AZAION_ORT_LIB":      "/lib/ort.so",
		"AZAION_LOG_LEVEL":    "debug",
		"AZAION_ONNX_THREADS": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9999" || c.Socket.Path != "/tmp/x.sock" || c.Paths.Models != "/m" ||
		c.Paths.State != "/s" || c.Paths.Plugins != "/p" || c.ONNX.Library != "/lib/ort.so" ||
		c.Log.Level != "debug" || c.ONNX.IntraOpThreads != 2 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if err := c.applyEnv(env(map[string]string{"AZAION_ONNX_THREADS": "two"})); err == nil || !strings.Contains(err.Error(), "AZAION_ONNX_THREADS") {
		t.Fatalf("bad number: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("AZAION_SOCKET", "/run/test.sock")
	c, err := Load(write("http:\n  addr: 127.0.0.1:1234\nsocket:\n  mode: \"0600\"\nonnx:\n  max_batch: 8\n  batch_wait: 5ms\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:1234" || c.Socket.Mode != 0o600 || c.ONNX.MaxBatch != 8 || c.ONNX.BatchWait != 5*time.Millisecond || c.Socket.Path != "/run/test.sock" {
		t.Fatalf("loaded %+v", c)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), true); err == nil {
		t.Fatal("a missing explicit config file must be an error")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), false); err != nil {
		t.Fatalf("a missing default config file is fine: %v", err)
	}
	tests := []struct{ yaml, field string }{
		{"htp:\n  addr: x\n", "htp"},
		{"onnx:\n  max_batch: 0\n", "onnx.max_batch"},
		{"onnx:\n  providers: [cpu, opencl]\n", "onnx.providers"},
		{"log:\n  level: loud\n", "log.level"},
		{"limits:\n  queue_size: -1\n", "limits.queue_size"},
		{"limits:\n  shared_images: -1\n", "limits.shared_images"},
		{"socket:\n  mode: rw\n", "mode"},
		{"http:\n  addr: 0.0.0.0:8470\n", "http.addr"},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			_, err := Load(write(tc.yaml), true)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v: want one naming %s", err, tc.field)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte("s3cr3t-value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("world-readable secret file: %v, want a refusal naming it", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSecretFile(p)
	if err != nil || s.Reveal() != "s3cr3t-value" {
		t.Fatalf("read: %q %v", s.Reveal(), err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", s)
	if out := buf.String() + fmt.Sprintf("%v %+v %#v %s", s, s, s, s); strings.Contains(out, "s3cr3t") {
		t.Fatalf("secret leaked: %s", out)
	}
	// A non-loopback listener needs a token; the token file must be 0600.
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte("http:\n  addr: 0.0.0.0:8470\n  token_file: "+p+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath, true)
	if err != nil || c.HTTP.Token.Reveal() != "s3cr3t-value" {
		t.Fatalf("load with token file: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8470": true, "127.8.9.1:1": true, "[::1]:80": true, "localhost:8470": true, "LOCALHOST:1": true,
		"127.evil.example:80": false, "0.0.0.0:8470": false, ":8470": false, "10.0.0.1:80": false, "127.0.0.1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
