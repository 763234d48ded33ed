package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
)

// Loader serves a model that was just stored (catalog.Catalog.AddStored).
type Loader func(ctx context.Context, m *modelstore.Manifest) error

// Errors of the pull route (the local API maps them to statuses).
var (
	// ErrBadRequest: the pull request is malformed.
	ErrBadRequest = errors.New("bad pull request")
	// ErrNotConfigured: the API or the CDN is not configured.
	ErrNotConfigured = errors.New("model distribution is not configured")
)

// Register adds POST /v1/models/pull with handle (localapi.Server.Handle,
// which answers the errors a route returns). The answer is an NDJSON stream
// of api.ModelPullProgress; after a successful pull the model is handed to load.
func (s *Service) Register(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error), load Loader) {
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
