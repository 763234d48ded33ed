package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

// TestDaemonDeps proves the daemon binary's import graph has no cgo and no
// plugin package (DESIGN.md section 2): vendor runtimes load only inside
// plugin processes.
func TestDaemonDeps(t *testing.T) {
	root := testenv.RepoRoot(t)
	// With cgo enabled, list every dependency and whether it has cgo files:
	// only the standard library may (net and os/user fall back to pure Go).
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", "./daemon/cmd/azaion")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n++
		path, std, cgo := f[0], f[1] == "true", f[2] != "0"
		if strings.HasPrefix(path, "github.com/azaion/edge/plugins/") {
			t.Errorf("daemon imports plugin package %s", path)
		}
		for _, banned := range []string{"gocv.io/", "github.com/yalue/onnxruntime_go"} {
			if strings.HasPrefix(path, banned) {
				t.Errorf("daemon imports vendor runtime %s", path)
			}
		}
		if cgo && !std {
			t.Errorf("daemon dependency %s uses cgo", path)
		}
	}
	if n < 50 {
		t.Fatalf("go list returned only %d packages: %s", n, out)
	}
	// And it builds with CGO_ENABLED=0 for both shipped architectures.
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			b := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "azaion"), "./daemon/cmd/azaion")
			b.Dir = root
			b.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if out, err := b.CombinedOutput(); err != nil {
				t.Fatalf("CGO_ENABLED=0 GOARCH=%s build: %v\n%s", arch, err, out)
			}
		})
	}
}
