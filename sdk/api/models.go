package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ModelPullRequest is the body of POST /v1/models/pull: fetch a published
// model from the Azaion REST API (small part) and the CDN (big part), verify
// it, keep it encrypted in the local store and load it.
type ModelPullRequest struct {
	// Name is the model name.
	Name string `json:"name"`
	// Version is the version to pull; empty pulls the latest on the CDN.
	Version string `json:"version,omitempty"`
}

// Pull stages reported in ModelPullProgress.Stage.
const (
	PullResolving = "resolving" // finding the latest version
	PullSmall     = "small"     // fetching the small part from the API
	PullBig       = "big"       // fetching the big part from the CDN
	PullVerifying = "verifying" // checking the tag and decrypting in memory
	PullStored    = "stored"    // the encrypted parts are in the local store
	PullCached    = "cached"    // the version was already in the local store
	PullLoaded    = "loaded"    // the model was handed to its backend
	PullFailed    = "failed"    // Error says why; nothing was loaded
	// PullDiscarded: the stored copy failed verification (Error says why)
	// and was removed; it is fetched again.
	PullDiscarded = "discarded"
)

// ModelPullProgress is one line of the NDJSON stream POST /v1/models/pull
// answers with (status 200; the last line has Stage "loaded", "cached",
// "stored" or "failed").
type ModelPullProgress struct {
	// Stage is one of the Pull* constants.
	Stage string `json:"stage"`
	// Name and Version identify the model (Version once resolved).
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Completed and Total count bytes of the part being fetched.
	Completed int64 `json:"completed,omitempty"`
	Total     int64 `json:"total,omitempty"`
	// Error says what failed (Stage "failed", or "discarded").
	Error string `json:"error,omitempty"`
}

// PullModel asks the daemon to pull a model and calls fn with every progress
// line. It returns an error when the pull failed.
func (c *Client) PullModel(ctx context.Context, req ModelPullRequest, fn func(ModelPullProgress)) error {
	resp, err := c.Raw(ctx, http.MethodPost, "/v1/models/pull", req, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var last ModelPullProgress
	for sc.Scan() {
		var p ModelPullProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("pull progress: %w", err)
		}
		last = p
		if fn != nil {
			fn(p)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("pull progress: %w", err)
	}
	switch last.Stage {
	case PullFailed:
		return fmt.Errorf("pull %s: %s", req.Name, last.Error)
	case PullLoaded, PullCached, PullStored:
		return nil
	}
	return fmt.Errorf("pull %s: the stream ended at stage %q", req.Name, last.Stage)
}

// ModelImportRequest names the model POST /v1/models/import stores: the
// model file is the request body (Content-Type application/octet-stream),
// these go in the query string (Query).
type ModelImportRequest struct {
	// Name and Version name the stored version (they override the
	// descriptor's; the version defaults to "1").
	Name    string
	Version string
	// Descriptor is the model's descriptor (sdk/model.Descriptor) as JSON,
	// e.g. from its sidecar file; optional.
	Descriptor json.RawMessage
}

// Query returns the query string parameters: name, version, descriptor.
func (r ModelImportRequest) Query() url.Values {
	q := url.Values{}
	if r.Name != "" {
		q.Set("name", r.Name)
	}
	if r.Version != "" {
		q.Set("version", r.Version)
	}
	if len(r.Descriptor) > 0 {
		q.Set("descriptor", string(r.Descriptor))
	}
	return q
}

// ModelImportResponse is the answer of POST /v1/models/import: the model
// is stored encrypted at rest (sealed with the daemon's local key) and, with
// Stage "loaded", served.
type ModelImportResponse struct {
	// Name and Version identify the stored version.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Format is the model's format (onnx, engine, rknn).
	Format string `json:"format"`
	// Size and SHA256 describe the model file (plaintext).
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Stage is PullLoaded (handed to its backend, which loads it now or as
	// soon as it is up) or PullStored (stored only).
	Stage string `json:"stage"`
}

// ImportModel uploads a model file (read from model) to the daemon, which
// stores it encrypted and serves it at once.
func (c *Client) ImportModel(ctx context.Context, req ModelImportRequest, model io.Reader) (*ModelImportResponse, error) {
	var out ModelImportResponse
	path := "/v1/models/import"
	if q := req.Query().Encode(); q != "" {
		path += "?" + q
	}
	if err := c.Do(ctx, http.MethodPost, path, model, "application/octet-stream", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
