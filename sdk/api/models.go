package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
