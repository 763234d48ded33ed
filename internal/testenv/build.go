package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildDone = map[string]error{}
)

// Binary builds a command of this module once per test process (e.g.
// "daemon/cmd/azaion" or "plugins/onnx/cmd/azaion-plugin-onnx") into a shared
// temporary folder and returns its path. Plugin binaries get the
// "<binary>.sha256" file the daemon verifies before launch. The daemon is
// built with CGO_ENABLED=0, as it ships. Call Cleanup from TestMain.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		d, err := os.MkdirTemp("", "azaion-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	err, done := buildDone[pkg]
	if !done {
		err = build(RepoRoot(t), pkg, out)
		buildDone[pkg] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func build(root, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if filepath.Base(pkg) == "azaion" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	return os.WriteFile(out+".sha256", []byte(hex.EncodeToString(sum[:])+"\n"), 0o644)
}

// Cleanup removes the binaries built by Binary; call it from TestMain after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir = ""
	}
}
