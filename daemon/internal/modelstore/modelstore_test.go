package modelstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestReimportAtomic: re-importing a version replaces it in one step. At
// every step of the import the store holds either the old version or the
// new one, whole (what a crash at that step would leave); an import that
// fails between steps leaves the old version loadable and nothing behind.
func TestReimportAtomic(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	kr := Keyring{LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: strings.Repeat("0f", 32)}
	desc := model.Descriptor{Name: "m", Version: "1"}
	old := bytes.Repeat([]byte("the old model "), 5000)
	if _, err := st.Import(old, desc, kr, KeyLocal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testHook = nil })
	// holds checks that m:1 loads as want and is the only version listed.
	holds := func(t *testing.T, step string, want []byte) {
		t.Helper()
		m, err := st.Load("m", "1", kr)
		if err != nil {
			t.Fatalf("at %q: m:1 does not load: %v", step, err)
		}
		if !bytes.Equal(m.Bytes, want) {
			t.Fatalf("at %q: m:1 is neither the old version nor the new one", step)
		}
		if list, err := st.List(); err != nil || len(list) != 1 || list[0].ID() != "m:1" {
			t.Fatalf("at %q: list %+v %v", step, list, err)
		}
	}
	staging := func(t *testing.T) []os.DirEntry {
		ents, err := os.ReadDir(filepath.Join(dir, "models", stagingDir))
		if err != nil {
			t.Fatal(err)
		}
		return ents
	}

	t.Run("every step holds a whole version", func(t *testing.T) {
		now := bytes.Repeat([]byte("the new model "), 6000)
		var steps []string
		testHook = func(step string) error {
			steps = append(steps, step)
			want := old
			if step == "swapped" {
				want = now
			}
			holds(t, step, want)
			return nil
		}
		if _, err := st.Import(now, desc, kr, KeyLocal); err != nil {
			t.Fatal(err)
		}
		testHook = nil
		holds(t, "after the import", now)
		if len(steps) < 2 {
			t.Fatalf("steps %v", steps)
		}
		if ents := staging(t); len(ents) != 0 {
			t.Fatalf("staging folder not empty: %v", ents)
		}
		old = now
	})

	t.Run("a failure between steps leaves the old version", func(t *testing.T) {
		crash := errors.New("injected failure")
		testHook = func(step string) error {
			if step == "staged" {
				return crash
			}
			return nil
		}
		_, err := st.Import([]byte("never stored"), desc, kr, KeyLocal)
		testHook = nil
		if !errors.Is(err, crash) {
			t.Fatalf("import: %v, want the injected failure", err)
		}
		holds(t, "after a failure", old)
		if ents := staging(t); len(ents) != 0 {
			t.Fatalf("staging folder not empty after a failure: %v", ents)
		}
	})

	t.Run("remove is one step", func(t *testing.T) {
		testHook = func(step string) error {
			if _, err := st.Manifest("m", "1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("at %q: m:1 still there: %v", step, err)
			}
			return nil
		}
		if err := st.Remove("m", "1"); err != nil {
			t.Fatal(err)
		}
		testHook = nil
		if _, err := os.Stat(filepath.Join(dir, "models", "m")); !os.IsNotExist(err) {
			t.Fatalf("name folder left: %v", err)
		}
		if ents := staging(t); len(ents) != 0 {
			t.Fatalf("staging folder not empty: %v", ents)
		}
	})

	t.Run("stale staging entries are removed at open", func(t *testing.T) {
		stale := filepath.Join(dir, "models", stagingDir, "import-m-1-123")
		if err := os.MkdirAll(filepath.Join(stale, "v"), 0o700); err != nil {
			t.Fatal(err)
		}
		fresh := filepath.Join(dir, "models", stagingDir, "import-m-1-456")
		os.MkdirAll(fresh, 0o700)
		long := time.Now().Add(-2 * staleAfter)
		os.Chtimes(stale, long, long)
		if _, err := Open(filepath.Join(dir, "models")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Fatalf("stale entry left: %v", err)
		}
		if _, err := os.Stat(fresh); err != nil {
			t.Fatalf("a recent entry (an import in progress elsewhere) was removed: %v", err)
		}
	})
}
