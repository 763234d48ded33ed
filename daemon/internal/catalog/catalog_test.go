package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

func TestSelect(t *testing.T) {
	cpu := Target{Backend: BackendONNX, Devices: []backend.Device{{Kind: backend.DeviceCPU, Name: "cpu"}}}
	gpu := Target{Backend: BackendTensorRT, Runtime: "10.3", Devices: []backend.Device{{Kind: backend.DeviceCUDA, Compute: "8.9"}}}
	gpuUnknown := Target{Backend: BackendTensorRT}
	npu := Target{Backend: BackendRKNN, Devices: []backend.Device{{Kind: backend.DeviceNPU, Compute: "rk3588"}}}
	onnx := model.Artifact{Backend: BackendONNX, Format: model.FormatONNX, File: "m.onnx"}
	onnxNoBackend := model.Artifact{Format: model.FormatONNX, File: "bare.onnx"}
	engine89 := model.Artifact{Backend: BackendTensorRT, Format: model.FormatEngine, Device: "8.9", Runtime: "10.3", File: "m.sm89.engine"}
	engine86 := model.Artifact{Backend: BackendTensorRT, Format: model.FormatEngine, Device: "8.6", Runtime: "10.3", File: "m.sm86.engine"}
	engineOld := model.Artifact{Backend: BackendTensorRT, Format: model.FormatEngine, Device: "8.9", Runtime: "8.6", File: "m.trt86.engine"}
	rknn := model.Artifact{Backend: BackendRKNN, Format: model.FormatRKNN, Device: "rk3588", File: "m.rknn"}
	bundle := []model.Artifact{onnx, engine86, engine89, rknn}
	tests := []struct {
		name    string
		arts    []model.Artifact
		targets []Target
		want    string // File of the chosen artifact; "" = none fits
		backend string
	}{
		{"cpu only gets onnx", bundle, []Target{cpu}, "m.onnx", BackendONNX},
		{"gpu gets the engine of its compute capability", bundle, []Target{cpu, gpu}, "m.sm89.engine", BackendTensorRT},
		{"order of targets does not matter", bundle, []Target{gpu, cpu}, "m.sm89.engine", BackendTensorRT},
		{"engine for another gpu falls back to onnx", []model.Artifact{onnx, engine86}, []Target{cpu, gpu}, "m.onnx", BackendONNX},
		{"engine for another runtime falls back to onnx", []model.Artifact{engineOld, onnx}, []Target{cpu, gpu}, "m.onnx", BackendONNX},
		{"gpu not started yet: no engine", bundle, []Target{cpu, gpuUnknown}, "m.onnx", BackendONNX},
		{"rk3588 gets rknn", bundle, []Target{cpu, npu}, "m.rknn", BackendRKNN},
		{"format alone names the backend", []model.Artifact{onnxNoBackend}, []Target{cpu}, "bare.onnx", BackendONNX},
		{"nothing fits", []model.Artifact{engine89, rknn}, []Target{cpu}, "", ""},
		{"no backends", bundle, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := Select(tc.arts, tc.targets)
			if tc.want == "" {
				if !errors.Is(err, ErrNoArtifact) {
					t.Fatalf("got %+v on %s, err %v; want ErrNoArtifact", a, b, err)
				}
				return
			}
			if err != nil || a.File != tc.want || b != tc.backend {
				t.Fatalf("got %q on %q (%v), want %q on %q", a.File, b, err, tc.want, tc.backend)
			}
		})
	}
}

func TestBackendFor(t *testing.T) {
	for format, want := range map[string]string{"": BackendONNX, "onnx": BackendONNX, "engine": BackendTensorRT, "rknn": BackendRKNN} {
		if got, err := BackendFor(format); err != nil || got != want {
			t.Errorf("BackendFor(%q) = %q, %v; want %q", format, got, err, want)
		}
	}
	if _, err := BackendFor("tflite"); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("BackendFor(tflite): err = %v", err)
	}
	for name, want := range map[string]string{"a.onnx": "onnx", "b.ONNX": "onnx", "c.engine": "engine", "d.plan": "engine", "e.rknn": "rknn"} {
		if got, ok := FormatForFile(name); !ok || got != want {
			t.Errorf("FormatForFile(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"a.yaml", "onnx", "a.onnx.part", "README.md"} {
		if f, ok := FormatForFile(name); ok {
			t.Errorf("FormatForFile(%q) = %q: not a model file", name, f)
		}
	}
}

// registry records what the catalog registers.
type registry struct {
	mu     sync.Mutex
	models map[string]sched.Source
	loads  []string
}

func (r *registry) Add(src sched.Source) error {
	if err := src.Descriptor.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.models[src.Descriptor.Name] = src
	return nil
}

func (r *registry) Remove(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.models, name)
	return nil
}

func (r *registry) Load(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads = append(r.loads, name)
	return nil
}

// served returns "name=origin@backend" for each registered model, sorted.
func (r *registry) served() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n, s := range r.models {
		out = append(out, n+"="+s.Origin+"@"+s.Backend)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestSync: what is registered on start, after files come and go, and
// after a model is stored; local files shadow stored models.
func TestSync(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	st, err := modelstore.Open(filepath.Join(state, "models"))
	if err != nil {
		t.Fatal(err)
	}
	kr := modelstore.Keyring{LocalKeyFile: filepath.Join(state, "local.key"), HardwareHash: strings.Repeat("ab", 32), Account: keys.Credentials{}}
	put := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("a.onnx", "model a")
	put("b.engine", "engine b")
	put("notes.txt", "not a model")
	put("bad#name.onnx", "named by file")
	put("c.onnx", "model c")
	put("c.yaml", "name: cee\nversion: \"2\"\n")
	if _, err := st.Import([]byte("stored s"), model.Descriptor{Name: "s", Version: "1", Format: model.FormatONNX}, kr, modelstore.KeyLocal); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import([]byte("stored a"), model.Descriptor{Name: "a", Version: "7", Format: model.FormatONNX}, kr, modelstore.KeyLocal); err != nil {
		t.Fatal(err)
	}
	reg := &registry{models: map[string]sched.Source{}}
	c := New(Options{ModelsDir: dir, Store: st, Keys: kr, Registry: reg})
	ctx := context.Background()
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := "a=file:" + dir + "/a.onnx@onnx b=file:" + dir + "/b.engine@tensorrt bad_name=file:" + dir + "/bad#name.onnx@onnx " +
		"cee=file:" + dir + "/c.onnx@onnx s=store:s:1@onnx"
	if got := reg.served(); got != want {
		t.Fatalf("served after start:\n got  %s\n want %s", got, want)
	}
	b, err := reg.models["s"].Open(ctx)
	if err != nil || string(b) != "stored s" {
		t.Fatalf("open stored model: %q, %v", b, err)
	}
	if reg.models["cee"].Descriptor.Version != "2" {
		t.Errorf("sidecar descriptor not used: %+v", reg.models["cee"].Descriptor)
	}

	// The local a.onnx goes: the stored a:7 takes its place; a new file appears.
	os.Remove(filepath.Join(dir, "a.onnx"))
	put("d.onnx", "model d")
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want = "b=file:" + dir + "/b.engine@tensorrt bad_name=file:" + dir + "/bad#name.onnx@onnx " +
		"cee=file:" + dir + "/c.onnx@onnx d=file:" + dir + "/d.onnx@onnx a=store:a:7@onnx s=store:s:1@onnx"
	if got := reg.served(); got != sortWords(want) {
		t.Fatalf("served after rescan:\n got  %s\n want %s", got, sortWords(want))
	}

	// A newer stored version is served at once; one shadowed by a file is refused.
	m, err := st.Import([]byte("stored s2"), model.Descriptor{Name: "s", Version: "2"}, kr, modelstore.KeyLocal)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddStored(ctx, m); err != nil {
		t.Fatal(err)
	}
	if reg.models["s"].Origin != "store:s:2" || len(reg.loads) != 1 || reg.loads[0] != "s" {
		t.Fatalf("after AddStored: %s, loads %v", reg.served(), reg.loads)
	}
	md, err := st.Import([]byte("stored d"), model.Descriptor{Name: "d", Version: "1"}, kr, modelstore.KeyLocal)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddStored(ctx, md); err == nil || !strings.Contains(err.Error(), "shadows") {
		t.Fatalf("stored d under a local d.onnx: err = %v", err)
	}
	if reg.models["d"].Origin != "file:"+dir+"/d.onnx" {
		t.Fatalf("the local d was replaced: %s", reg.served())
	}
}

func sortWords(s string) string {
	w := strings.Fields(s)
	sort.Strings(w)
	return strings.Join(w, " ")
}
