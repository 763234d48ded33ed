package modelstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/sdk/model"
)

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1},
		{"1.10", "1.9", 1},
		{"2026-11-28", "2026-02-01", 1},
		{"1.0", "1.0.1", -1},
		{"v2", "v10", 1}, // non-numeric fields compare as strings
		{"3", "3", 0},
		{"010", "9", 1},
	} {
		t.Run(tc.a+" vs "+tc.b, func(t *testing.T) {
			if got := CompareVersions(tc.a, tc.b); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStoreLifecycle(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	kr := Keyring{LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: strings.Repeat("0f", 32)}
	pt := bytes.Repeat([]byte("not really an onnx model "), 10000)
	for _, v := range []string{"1", "10", "9"} {
		if _, err := st.Import(pt, model.Descriptor{Name: "m", Version: v}, kr, KeyLocal); err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted download (no manifest) is not listed.
	w, err := st.Create("m", "11")
	if err != nil {
		t.Fatal(err)
	}
	w.Big().Write([]byte("partial"))
	w.Abort(true)
	list, err := st.List()
	if err != nil || len(list) != 3 || list[2].Version != "10" {
		t.Fatalf("list %+v %v", list, err)
	}
	if v, err := st.Latest("m"); err != nil || v != "10" {
		t.Fatalf("latest %q %v", v, err)
	}
	// Resuming sees the partial bytes; aborting without keeping removes them.
	w, _ = st.Create("m", "11")
	if w.Offset() != 7 {
		t.Fatalf("offset %d", w.Offset())
	}
	w.Abort(false)
	if _, err := os.Stat(filepath.Join(dir, "models", "m", "11")); !os.IsNotExist(err) {
		t.Fatalf("aborted version left behind: %v", err)
	}
	// Files are private.
	st2, _ := os.Stat(filepath.Join(dir, "models", "m", "1", SmallFile))
	if st2.Mode().Perm() != 0o600 {
		t.Fatalf("small part mode %o", st2.Mode().Perm())
	}
	m, err := st.Load("m", "9", kr)
	if err != nil || !bytes.Equal(m.Bytes, pt) {
		t.Fatalf("load: %v", err)
	}
	if _, err := st.Load("m", "404", kr); err == nil {
		t.Fatal("loaded a missing version")
	}
	if _, err := st.Create("../x", "1"); err == nil {
		t.Fatal("accepted a path in the name")
	}
	if err := st.Remove("m", "1"); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeEnvelope: a small part stored in the old envelope format (with
// a credential check) is rewritten in the current format when it is loaded.
func TestUpgradeEnvelope(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	kr := Keyring{LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: strings.Repeat("0f", 32)}
	pt := []byte("a model")
	if _, err := st.Import(pt, model.Descriptor{Name: "m", Version: "1"}, kr, KeyLocal); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "models", "m", "1", SmallFile)
	key, err := kr.Key(KeyLocal)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(small)
	inner, err := key.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	old, err := key.SealVersion1(inner, [8]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small, old, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := st.Load("m", "1", kr)
	if err != nil || !bytes.Equal(m.Bytes, pt) {
		t.Fatalf("load: %v", err)
	}
	now, _ := os.ReadFile(small)
	if keys.Version(now) != keys.EnvelopeVersion {
		t.Fatalf("envelope still version %d after load", keys.Version(now))
	}
	if m, err := st.Load("m", "1", kr); err != nil || !bytes.Equal(m.Bytes, pt) {
		t.Fatalf("load after the upgrade: %v", err)
	}
}
