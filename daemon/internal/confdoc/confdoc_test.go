package confdoc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/testenv"
)

func packaged(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "packaging", "azaion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackagedConfigHasEveryKey fails when a key of any subsystem's section
// is missing from packaging/azaion.yaml (the .deb's /etc/azaion/azaion.yaml),
// naming it, and when the file's defaults differ from the daemon's.
func TestPackagedConfigHasEveryKey(t *testing.T) {
	file := packaged(t)
	want := Keys(reflect.TypeOf(config.Config{}))
	for _, k := range []string{"http.addr", "socket.mode", "onnx.providers", "api.password_file", "cdn.part_size",
		"data.root", "ingest.sync", "trainer.augment.flip_p", "trainer.dataset.test"} {
		if !slices.Contains(want, k) {
			t.Fatalf("Keys lacks %s: %v", k, want)
		}
	}
	got, err := NodeKeys(Uncomment(file))
	if err != nil {
		t.Fatalf("packaging/azaion.yaml uncommented is not YAML: %v", err)
	}
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("packaging/azaion.yaml lacks the key %s: run `make config`", k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			t.Errorf("packaging/azaion.yaml has %s, which the daemon does not know", k)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			t.Errorf("line %q is not commented out: the packaged file must leave every default to the daemon", line)
		}
	}

	// Uncommented, every key holds the daemon's default, and the file passes
	// the daemon's strict decoding (unknown keys refused).
	var c config.Config
	dec := yaml.NewDecoder(bytes.NewReader(Uncomment(file)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode the uncommented file: %v", err)
	}
	a, _ := yaml.Marshal(c)
	b, _ := yaml.Marshal(config.Default())
	if string(a) != string(b) {
		t.Errorf("the file's values differ from config.Default (run `make config`):\nfile:\n%s\ndefault:\n%s", a, b)
	}
}

// TestMissingKeyIsCaught proves the check above: a file without one key fails it.
func TestMissingKeyIsCaught(t *testing.T) {
	var kept []string
	for _, l := range strings.Split(string(Uncomment(packaged(t))), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "batch_wait:") {
			kept = append(kept, l)
		}
	}
	got, err := NodeKeys([]byte(strings.Join(kept, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"onnx.batch_wait", "ingest.batch_wait"} {
		if slices.Contains(got, k) {
			t.Errorf("%s still found after its line was removed", k)
		}
	}
	if !slices.Contains(got, "onnx.max_batch") {
		t.Errorf("onnx.max_batch lost: %v", got)
	}
}

// TestPackagedConfigIsCurrent: the file is what `make config` writes now,
// doc comments included.
func TestPackagedConfigIsCurrent(t *testing.T) {
	want, err := Render(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := packaged(t); !bytes.Equal(got, want) {
		t.Fatalf("packaging/azaion.yaml is out of date: run `make config`\n--- want\n%s", want)
	}
	if !strings.Contains(string(want), "#  # Addr is host:port") {
		t.Errorf("field docs missing from the rendered file")
	}
}
