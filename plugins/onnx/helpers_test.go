package onnx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// newBackend starts a backend on the test ONNX Runtime library.
func newBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	cfg.Library = testenv.ORTLib(t)
	b, err := New(cfg, hclog.New(&hclog.LoggerOptions{Name: "onnx", Level: hclog.Warn, Output: os.Stderr}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// loadModel loads a shared test model with an empty descriptor (all from the model).
func loadModel(t testing.TB, b *Backend, file string) *backend.LoadResult {
	t.Helper()
	data, err := os.ReadFile(testenv.Model(t, file))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(filepath.Base(file), ".onnx")
	res, err := b.Load(context.Background(), model.Descriptor{Name: name}, data)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return res
}

// readTestImage reads a shared test image.
func readTestImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Model(t, filepath.Join("images", name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
