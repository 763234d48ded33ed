package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Model is one entry of GET /v1/models.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Backend string `json:"backend"`
	// Origin says where the model comes from (file:PATH, store).
	Origin string `json:"origin"`
	// State is loading, ready, failed or unloaded (registered, not in
	// memory: idle past the keep-alive, evicted for room, or unloaded on
	// request; the next request for it loads it).
	State    string  `json:"state"`
	Error    string  `json:"error,omitempty"`
	Device   string  `json:"device,omitempty"`
	MaxBatch int     `json:"max_batch,omitempty"`
	WarmupMS float64 `json:"warmup_ms,omitempty"`
	Format   string  `json:"format,omitempty"`
	Input    string  `json:"input,omitempty"` // e.g. "640x640"
	Output   string  `json:"output,omitempty"`
	Classes  int     `json:"classes,omitempty"`
	// Bytes is the memory the loaded model takes (as its backend reports
	// it, else the model's size).
	Bytes int64 `json:"bytes,omitempty"`
	// LastUsed is when a request last used the model.
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// ModelsResponse is the body of GET /v1/models.
type ModelsResponse struct {
	Models []Model `json:"models"`
	// Hint says how to add a model when there are none.
	Hint string `json:"hint,omitempty"`
}

// PluginState is the state of a supervised plugin process.
type PluginState struct {
	Name string `json:"name"`
	// State is starting, ready, down or stopped.
	State     string    `json:"state"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	// ConfigError is true when the plugin cannot start until its
	// configuration is fixed (binary, checksum, runtime library, settings):
	// it is then retried only every few minutes.
	ConfigError bool `json:"config_error,omitempty"`
	// StuckKills counts the kills of the plugin because its detections made
	// no progress.
	StuckKills int `json:"stuck_kills,omitempty"`
}

// Backend is one entry of GET /v1/backends: a detection backend plugin.
type Backend struct {
	PluginState
	Version   string          `json:"version,omitempty"`
	Devices   []BackendDevice `json:"devices,omitempty"`
	Formats   []string        `json:"formats,omitempty"`
	Providers []string        `json:"providers,omitempty"`
}

// BackendDevice is a compute device of a backend (the backend plugin
// contract, sdk/backend, reports it in this form).
type BackendDevice struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	MemoryTotal uint64 `json:"memory_total,omitempty"`
	MemoryFree  uint64 `json:"memory_free,omitempty"`
	// Compute is the CUDA compute capability or the SoC name.
	Compute string `json:"compute,omitempty"`
	// UUID is the device's unique id where the runtime reports one.
	UUID string `json:"uuid,omitempty"`
}

// BackendsResponse is the body of GET /v1/backends.
type BackendsResponse struct {
	Backends []Backend `json:"backends"`
}

// Readiness is the body of GET /readyz and GET /healthz.
type Readiness struct {
	Status  string   `json:"status"` // ok or not_ready
	Reasons []string `json:"reasons,omitempty"`
}

// Models lists the daemon's models.
func (c *Client) Models(ctx context.Context) (*ModelsResponse, error) {
	var out ModelsResponse
	return &out, c.Do(ctx, http.MethodGet, "/v1/models", nil, "", &out)
}

// LoadModel loads a model now and returns it once it is ready.
func (c *Client) LoadModel(ctx context.Context, name string) (*Model, error) {
	var out Model
	return &out, c.Do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(name)+"/load", nil, "", &out)
}

// UnloadModel frees a model's memory; it loads again when asked for.
func (c *Client) UnloadModel(ctx context.Context, name string) (*Model, error) {
	var out Model
	return &out, c.Do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(name)+"/unload", nil, "", &out)
}

// Backends lists the daemon's backends.
func (c *Client) Backends(ctx context.Context) (*BackendsResponse, error) {
	var out BackendsResponse
	return &out, c.Do(ctx, http.MethodGet, "/v1/backends", nil, "", &out)
}

// Ready returns nil when the daemon is ready, else a *StatusError (503)
// whose message lists the reasons.
func (c *Client) Ready(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/readyz", nil, "", nil)
}
