package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

// TestFingerprintCLI: the same hash on every run; --explain shows the
// fields; a fake sysfs tree gives the disk serial from /sys/block.
func TestFingerprintCLI(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(azaion, append([]string{"fingerprint"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("azaion fingerprint %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	a, b := run(), run()
	if a != b || len(strings.TrimSpace(a)) != 64 {
		t.Fatalf("hash not stable or malformed: %q %q", a, b)
	}
	if ex := run("--explain"); !strings.Contains(ex, "cpu.model") || !strings.Contains(ex, strings.TrimSpace(a)) {
		t.Fatalf("explain: %s", ex)
	}
	root := t.TempDir()
	for p, c := range map[string]string{"sys/block/sda/removable": "0", "sys/block/sda/size": "10", "sys/block/sda/device/serial": "FAKE-SERIAL-1"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c+"\n"), 0o644)
	}
	if ex := run("--explain", "--root", root); !strings.Contains(ex, "disk.serial=FAKE-SERIAL-1") || !strings.Contains(ex, "cpu.model=!unreadable") {
		t.Fatalf("fake tree: %s", ex)
	}
}
