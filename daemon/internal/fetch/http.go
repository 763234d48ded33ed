package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
)

// Loader hands a stored model to the serving side (which decrypts it with
// Store.Load when the backend loads it).
type Loader func(ctx context.Context, m *modelstore.Manifest) error

// LoadCached hands the latest stored version of every model to load, so a
// daemon serves its cached models at start even when the API and the CDN are
// down. skip reports names that are served from elsewhere (local files).
func (s *Service) LoadCached(ctx context.Context, load Loader, skip func(name string) bool) error {
	all, err := s.Store.List()
	if err != nil {
		return err
	}
	latest := map[string]modelstore.Manifest{}
	for _, m := range all { // sorted by name, then version
		latest[m.Name] = m
	}
	var errs []error
	for name, m := range latest {
		if skip != nil && skip(name) {
			s.log().Warn("stored model shadowed by a local model file of the same name", "model", m.ID())
			continue
		}
		if err := load(ctx, &m); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log().Info("serving stored model", "model", m.ID())
	}
	return errors.Join(errs...)
}

// Descriptor returns the descriptor to serve a stored model with: the
// container's, named after the store entry, onnx when no format is given.
func Descriptor(m *modelstore.Manifest) model.Descriptor {
	d := m.Descriptor
	d.Name, d.Version = m.Name, m.Version
	if d.Format == "" {
		d.Format = model.FormatONNX
	}
	return d
}

// Register adds POST /v1/models/pull to a mux (handle is e.g.
// localapi.Server.Handle). The answer is an NDJSON stream of
// api.ModelPullProgress; after a successful pull the model is handed to load.
func (s *Service) Register(handle func(pattern string, h http.Handler), load Loader) {
	handle("POST /v1/models/pull", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.ModelPullRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, api.CodeBadRequest, "pull request: "+err.Error())
			return
		}
		if !model.ValidName(req.Name) || (req.Version != "" && !model.ValidName(req.Version)) {
			writeError(w, api.CodeBadRequest, "pull request: name and version: want letters, digits, '.', '_' or '-'")
			return
		}
		if s.API == nil || s.CDN == nil {
			writeError(w, api.CodeUnavailable, "pulling models needs api.url, api.email, the API password, cdn.endpoint and the CDN read key in the daemon configuration")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		var mu sync.Mutex
		enc := json.NewEncoder(w)
		var lastBig time.Time
		send := func(p api.ModelPullProgress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Stage == api.PullBig && p.Completed < p.Total && time.Since(lastBig) < 200*time.Millisecond {
				return
			}
			if p.Stage == api.PullBig {
				lastBig = time.Now()
			}
			enc.Encode(p)
			if fl != nil {
				fl.Flush()
			}
		}
		p, err := s.Pull(r.Context(), req.Name, req.Version, send)
		if err != nil {
			send(api.ModelPullProgress{Stage: api.PullFailed, Name: req.Name, Version: req.Version, Error: err.Error()})
			return
		}
		clear(p.Bytes)
		if load != nil {
			if err := load(r.Context(), p.Manifest); err != nil {
				send(api.ModelPullProgress{Stage: api.PullFailed, Name: p.Manifest.Name, Version: p.Manifest.Version,
					Error: "stored, but loading failed: " + err.Error()})
				return
			}
			send(api.ModelPullProgress{Stage: api.PullLoaded, Name: p.Manifest.Name, Version: p.Manifest.Version})
			return
		}
		send(api.ModelPullProgress{Stage: api.PullStored, Name: p.Manifest.Name, Version: p.Manifest.Version})
	}))
}

func writeError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(api.StatusForCode(code))
	json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

// Open returns a function that verifies and decrypts the stored model m in
// memory, for the scheduler to call whenever a backend loads it.
func (s *Service) Open(m *modelstore.Manifest) func(ctx context.Context) ([]byte, error) {
	name, version := m.Name, m.Version
	return func(ctx context.Context) ([]byte, error) {
		md, err := s.Store.Load(name, version, s.Keys)
		if err != nil {
			return nil, err
		}
		return md.Bytes, nil
	}
}

// BackendFor returns the backend plugin that loads a model format.
func BackendFor(format string) string {
	switch format {
	case model.FormatEngine:
		return "tensorrt"
	case model.FormatRKNN:
		return "rknn"
	}
	return "onnx"
}
