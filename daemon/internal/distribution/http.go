package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
)

// Loader serves a model that was just stored (catalog.Catalog.AddStored).
type Loader func(ctx context.Context, m *modelstore.Manifest) error

// Errors of the pull and import routes (the local API maps them to statuses).
var (
	// ErrBadRequest: the pull or import request is malformed.
	ErrBadRequest = errors.New("bad model request")
	// ErrNotConfigured: the API or the CDN is not configured.
	ErrNotConfigured = errors.New("model distribution is not configured")
	// ErrImportBusy: another model upload is in progress.
	ErrImportBusy = errors.New("another model import is in progress")
	// ErrBodyTimeout: the uploaded model did not arrive in time.
	ErrBodyTimeout = errors.New("the model upload was too slow")
)

// Register adds POST /v1/models/pull and POST /v1/models/import with
// handle (localapi.Server.Handle, which answers the errors a route
// returns). The pull answer is an NDJSON stream of api.ModelPullProgress;
// the import answer is an api.ModelImportResponse. After a successful pull
// or import the model is handed to load.
func (s *Service) Register(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error), load Loader) {
	handle("POST /v1/models/import", func(w http.ResponseWriter, r *http.Request) error {
		return s.serveImport(w, r, load)
	})
	handle("POST /v1/models/pull", func(w http.ResponseWriter, r *http.Request) error {
		var req api.ModelPullRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		if !model.ValidName(req.Name) || (req.Version != "" && !model.ValidName(req.Version)) {
			return fmt.Errorf("%w: name and version: want letters, digits, '.', '_' or '-'", ErrBadRequest)
		}
		if s.API == nil || s.CDN == nil {
			return fmt.Errorf("%w: pulling models needs api.url, api.email, the API password, cdn.endpoint and the CDN read key in the daemon configuration", ErrNotConfigured)
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
			return nil
		}
		clear(p.Bytes)
		if load != nil {
			if err := load(r.Context(), p.Manifest); err != nil {
				send(api.ModelPullProgress{Stage: api.PullFailed, Name: p.Manifest.Name, Version: p.Manifest.Version,
					Error: "stored, but loading failed: " + err.Error()})
				return nil
			}
			send(api.ModelPullProgress{Stage: api.PullLoaded, Name: p.Manifest.Name, Version: p.Manifest.Version})
			return nil
		}
		send(api.ModelPullProgress{Stage: api.PullStored, Name: p.Manifest.Name, Version: p.Manifest.Version})
		return nil
	})
}

// serveImport stores the model in the request body (one upload at a time,
// bounded by MaxImportBytes and ImportBodyTimeout) and hands it to load.
// The load is not tied to the request: a client that hangs up does not
// leave the model half-loaded.
func (s *Service) serveImport(w http.ResponseWriter, r *http.Request, load Loader) error {
	desc, err := importDescriptor(r.URL.Query())
	if err != nil {
		return err
	}
	if s.Store == nil {
		return fmt.Errorf("%w: no state folder", ErrNotConfigured)
	}
	if !s.importing.TryLock() {
		return fmt.Errorf("%w; try again when it is done", ErrImportBusy)
	}
	defer s.importing.Unlock()
	limit := s.MaxImportBytes
	if limit <= 0 {
		limit = DefaultMaxImportBytes
	}
	timeout := s.ImportBodyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	defer clear(b)
	_ = rc.SetReadDeadline(time.Time{}) // the body is in: storing and loading take what they take
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("model %s: larger than %d bytes: %w", desc.ID(), limit, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: model %s did not arrive within %s", ErrBodyTimeout, desc.ID(), timeout)
	case err != nil:
		return fmt.Errorf("%w: reading model %s: %v", ErrBadRequest, desc.ID(), err)
	case len(b) == 0:
		return fmt.Errorf("%w: empty body: send the model file as the body (application/octet-stream)", ErrBadRequest)
	}
	m, err := s.Import(b, desc)
	if err != nil {
		return err
	}
	resp := api.ModelImportResponse{Name: m.Name, Version: m.Version, Format: desc.Format, Size: m.PlaintextSize,
		SHA256: m.PlaintextSHA256, Stage: api.PullStored}
	if load != nil {
		if err := load(context.WithoutCancel(r.Context()), m); err != nil {
			return fmt.Errorf("imported %s into the store, but serving it failed: %w", m.ID(), err)
		}
		resp.Stage = api.PullLoaded
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(resp)
}

// importDescriptor reads the import route's query: descriptor (JSON of
// model.Descriptor, optional), name and version (override it; the version
// defaults to "1", the format to onnx).
func importDescriptor(q url.Values) (model.Descriptor, error) {
	var d model.Descriptor
	if js := q.Get("descriptor"); js != "" {
		dec := json.NewDecoder(strings.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return d, fmt.Errorf("%w: descriptor: %v", ErrBadRequest, err)
		}
	}
	if n := q.Get("name"); n != "" {
		d.Name = n
	}
	if v := q.Get("version"); v != "" {
		d.Version = v
	}
	if d.Name == "" {
		return d, fmt.Errorf("%w: name is required (query parameter name, or in the descriptor)", ErrBadRequest)
	}
	if d.Version == "" {
		d.Version = "1"
	}
	if d.Format == "" {
		d.Format = model.FormatONNX
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return d, nil
}
