// Package testenv finds what the tests need on this machine: the shared test
// models, the ONNX Runtime library, built binaries and the test servers that
// `make test` starts (scripts/with-services.sh). It is imported only by tests.
//
// A missing requirement fails the test with a message saying how to get it;
// nothing here skips, so `make test` runs every test.
package testenv

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository root (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Models returns the folder of shared test models (AZAION_TEST_MODELS, else
// ../shared/models beside the repository).
func Models(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AZAION_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Fatalf("testenv: shared test models not found at %s (set AZAION_TEST_MODELS): %v", dir, err)
	}
	return dir
}

// Model returns the path of one shared test file, e.g. "yolo11n_int8.onnx" or "images/bus.jpg".
func Model(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Models(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// ORTLib returns the path of libonnxruntime (AZAION_ORT_LIB, which `make`
// exports; `make deps` downloads it).
func ORTLib(t testing.TB) string {
	t.Helper()
	p := os.Getenv("AZAION_ORT_LIB")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "azaion-edge", "onnxruntime-1.30.0", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: ONNX Runtime library not found (run `make deps` or set AZAION_ORT_LIB): %v", err)
	}
	return p
}

// TrainerPython returns the interpreter of the training worker's virtual
// environment (AZAION_TRAINER_PYTHON, which `make` exports; `make deps`
// builds it under ~/.cache/azaion-edge/trainer-venv).
func TrainerPython(t testing.TB) string {
	t.Helper()
	p := os.Getenv("AZAION_TRAINER_PYTHON")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "azaion-edge", "trainer-venv", "bin", "python")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: the training worker's Python not found (run `make deps` or set AZAION_TRAINER_PYTHON): %v", err)
	}
	return p
}

// Env returns the value of a variable that `make test` sets for a test server,
// failing the test with a hint when it is missing.
func Env(t testing.TB, key, what string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("testenv: %s is not set: %s is started by `make test` (scripts/with-services.sh)", key, what)
	}
	return v
}

// FreeTCPAddr returns a loopback address that was free a moment ago, for a
// server a test starts.
func FreeTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
