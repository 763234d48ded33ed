package debtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// cacheDir is the machine-wide cache (AZAION_CACHE, as the Makefile sets it).
func cacheDir() string {
	if d := os.Getenv("AZAION_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "azaion-edge")
}

// dist returns the folder `make deb` writes to (AZAION_DIST, else dist/).
func dist(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("AZAION_DIST"); d != "" {
		return d
	}
	return filepath.Join(testenv.RepoRoot(t), "dist")
}

// deb returns the package `make deb` built for arch, and its version.
func deb(t *testing.T, arch string) (path, version string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dist(t), "azaion_*_"+arch+".deb"))
	if v := os.Getenv("DEB_VERSION"); v != "" {
		m, _ = filepath.Glob(filepath.Join(dist(t), "azaion_"+v+"_"+arch+".deb"))
	}
	if len(m) != 1 {
		t.Fatalf("want one dist/azaion_<version>_%s.deb, found %v: run `make deb` (make test does)", arch, m)
	}
	name := strings.TrimSuffix(filepath.Base(m[0]), "_"+arch+".deb")
	return m[0], strings.TrimPrefix(name, "azaion_")
}

// extract unpacks a .deb's files and its control files into a temp folder.
func extract(t *testing.T, debPath string) (root, control string) {
	t.Helper()
	dir := t.TempDir()
	root, control = filepath.Join(dir, "root"), filepath.Join(dir, "DEBIAN")
	run(t, "dpkg-deb", "-x", debPath, root)
	run(t, "dpkg-deb", "-e", debPath, control)
	return root, control
}

// run runs a host command and returns its output; failure fails the test.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// controlFields parses a Debian control paragraph.
func controlFields(s string) map[string]string {
	f := map[string]string{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") && last != "" {
			f[last] += "\n" + strings.TrimSpace(line)
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			last = strings.TrimSpace(k)
			f[last] = strings.TrimSpace(v)
		}
	}
	return f
}
