package distribution_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
)

func TestPullRoute(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "routed", "1")
	edge := e.edge(t, alice, e.hw)
	mux := http.NewServeMux()
	var loaded []string
	edge.Register(func(pattern string, h localapi.HandlerFunc) { mux.Handle(pattern, localapi.Handler(h)) }, func(ctx context.Context, m *modelstore.Manifest) error {
		loaded = append(loaded, m.ID())
		return nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := api.NewHTTPClient(srv.URL, "")
	ctx := context.Background()

	var stages []string
	if err := c.PullModel(ctx, api.ModelPullRequest{Name: "routed"}, func(p api.ModelPullProgress) {
		stages = append(stages, p.Stage)
	}); err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0] != "routed:1" || stages[len(stages)-1] != api.PullLoaded {
		t.Fatalf("loaded %v, stages %v", loaded, stages)
	}
	for _, tc := range []struct {
		name string
		req  api.ModelPullRequest
		want string
	}{
		{"unknown model", api.ModelPullRequest{Name: "nope", Version: "1"}, "small part"},
		{"bad name", api.ModelPullRequest{Name: "../etc"}, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.PullModel(ctx, tc.req, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if len(loaded) != 1 {
		t.Fatalf("a failed pull loaded something: %v", loaded)
	}
}

// TestImportRoute: POST /v1/models/import stores the uploaded model
// encrypted with the local key and hands it to the loader; bad requests get
// their 4xx, and a model stored but not servable says so.
func TestImportRoute(t *testing.T) {
	dir := t.TempDir()
	st, err := modelstore.Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &distribution.Service{Store: st, MaxImportBytes: 1 << 20,
		Keys: modelstore.Keyring{LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: strings.Repeat("ab", 32)}}
	var loaded []string
	var loadErr error
	mux := http.NewServeMux()
	svc.Register(func(pattern string, h localapi.HandlerFunc) { mux.Handle(pattern, localapi.Handler(h)) }, func(ctx context.Context, m *modelstore.Manifest) error {
		loaded = append(loaded, m.ID())
		return loadErr
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := api.NewHTTPClient(srv.URL, "")
	ctx := context.Background()

	desc, _ := json.Marshal(model.Descriptor{Name: "from-sidecar", Classes: []string{"car", "truck"}, Output: model.OutputYOLORaw})
	first := bytes.Repeat([]byte("model one "), 1000)
	res, err := c.ImportModel(ctx, api.ModelImportRequest{Name: "imp", Descriptor: desc}, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "imp" || res.Version != "1" || res.Stage != api.PullLoaded || res.Size != int64(len(first)) ||
		res.Format != model.FormatONNX || fmt.Sprint(loaded) != "[imp:1]" {
		t.Fatalf("import: %+v, loaded %v", res, loaded)
	}
	m, err := st.Load("imp", "1", svc.Keys)
	if err != nil || !bytes.Equal(m.Bytes, first) || m.Source != "import" || m.Key != modelstore.KeyLocal ||
		len(m.Descriptor.Classes) != 2 || m.Descriptor.Output != model.OutputYOLORaw {
		t.Fatalf("stored: %+v %v", m, err)
	}
	second := bytes.Repeat([]byte("model two "), 1000)
	if _, err := c.ImportModel(ctx, api.ModelImportRequest{Name: "imp", Version: "1"}, bytes.NewReader(second)); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Load("imp", "1", svc.Keys); err != nil || !bytes.Equal(m.Bytes, second) {
		t.Fatalf("re-import: %v", err)
	}

	loaded = nil
	for _, tc := range []struct {
		name   string
		req    api.ModelImportRequest
		body   []byte
		status int
		want   string
	}{
		{"no name", api.ModelImportRequest{}, first, 400, "name is required"},
		{"bad name", api.ModelImportRequest{Name: "../etc"}, first, 400, "name"},
		{"bad descriptor", api.ModelImportRequest{Name: "x", Descriptor: json.RawMessage(`{"input_width":"wide"}`)}, first, 400, "descriptor"},
		{"unknown descriptor field", api.ModelImportRequest{Name: "x", Descriptor: json.RawMessage(`{"colour":"red"}`)}, first, 400, "colour"},
		{"empty body", api.ModelImportRequest{Name: "x"}, nil, 400, "empty body"},
		{"too large", api.ModelImportRequest{Name: "x"}, make([]byte, 1<<20+1), 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ImportModel(ctx, tc.req, bytes.NewReader(tc.body))
			var se *api.StatusError
			if !errors.As(err, &se) || se.Status != tc.status || !strings.Contains(se.Message, tc.want) {
				t.Fatalf("err = %v, want %d saying %q", err, tc.status, tc.want)
			}
			if list, _ := st.List(); len(list) != 1 {
				t.Fatalf("a refused import was stored: %+v", list)
			}
		})
	}
	if len(loaded) != 0 {
		t.Fatalf("a refused import was loaded: %v", loaded)
	}

	t.Run("stalled upload", func(t *testing.T) {
		svc.ImportBodyTimeout = 300 * time.Millisecond
		defer func() { svc.ImportBodyTimeout = 0 }()
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte("the first bytes, then nothing"))
		_, err := c.ImportModel(ctx, api.ModelImportRequest{Name: "stalled"}, pr)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Status != 408 || !strings.Contains(se.Message, "did not arrive") {
			t.Fatalf("err = %v, want 408", err)
		}
	})

	loadErr = fmt.Errorf("model shadow: %w", catalog.ErrShadowed)
	_, err = c.ImportModel(ctx, api.ModelImportRequest{Name: "shadow"}, bytes.NewReader(first))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != 409 || !strings.Contains(se.Message, "imported shadow:1 into the store, but serving it failed") {
		t.Fatalf("import of a shadowed model: %v", err)
	}
}
