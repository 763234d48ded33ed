// Package localapi serves the daemon's local HTTP API (DESIGN.md section 8):
// the same handlers on the loopback TCP listener and on the Unix socket,
// under /v1, plus /healthz, /readyz and /metrics. Errors are JSON
// {"error":{"code","message"}}; the mapping from the daemon's errors to HTTP
// statuses lives here and nowhere else (errors.go): other subsystems'
// routes return their errors to it (HandlerFunc). It is imported only by
// the daemon.
package localapi

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/shmem"
)

// Options configure a Server.
type Options struct {
	Sched *sched.Scheduler
	// Backends lists the detection backends for GET /v1/backends and readiness.
	Backends func(ctx context.Context) []api.Backend
	// ReadyChecks are the other subsystems' readiness checks: each returns
	// the reasons it is not ready (none when it is).
	ReadyChecks []func(ctx context.Context) []string
	// MaxBodyBytes bounds request bodies (413 above).
	MaxBodyBytes int64
	// MaxPixels bounds decoded image size (422 above).
	MaxPixels int64
	// RequestTimeout bounds one detection.
	RequestTimeout time.Duration
	// BodyTimeout bounds how long a request body may take to arrive.
	BodyTimeout time.Duration
	// MaxUploads bounds the detection requests receiving their bodies at
	// once (429 beyond; default 8).
	MaxUploads int
	// AllowedHosts are Host names (besides loopback addresses, localhost and
	// the listener's own) that TCP requests may carry.
	AllowedHosts []string
	// AllowedOrigins are the web origins (scheme://host[:port]) whose
	// requests are served; requests from any other origin are refused.
	AllowedOrigins []string
	// ModelsHint is shown when no model is registered.
	ModelsHint string
	// Shared is the pool of shared image memory (sdk/shmem): a raw image
	// body of known length is read straight into a slot of it, which goes
	// to the backend plugin by reference; nil reads every body to the heap.
	Shared *shmem.Pool
	// Video configures POST /v1/detect/video; nil leaves it out.
	Video *VideoOptions
	// Registry is the Prometheus registry served at /metrics.
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// Server is the local API.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	metrics *metrics
	uploads chan struct{} // a slot per request receiving its body
	// videoSlots bounds the videos processed at once.
	videoSlots chan struct{}
}

// New returns a Server with the core routes registered.
func New(opts Options) *Server {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MaxUploads <= 0 {
		opts.MaxUploads = 8
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), metrics: newMetrics(opts.Registry),
		uploads: make(chan struct{}, opts.MaxUploads)}
	s.mux.HandleFunc("POST /v1/detect", s.handleDetect)
	if opts.Video != nil {
		s.videoSlots = make(chan struct{}, max(1, opts.Video.MaxJobs))
		s.mux.HandleFunc("POST /v1/detect/video", s.handleDetectVideo)
	}
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.Handle("POST /v1/models/{name}/load", s.handleLoad)
	s.Handle("POST /v1/models/{name}/unload", s.handleUnload)
	s.mux.HandleFunc("GET /v1/backends", s.handleBackends)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorCode(w, api.CodeNotFound, 0, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handle registers another subsystem's route (e.g. "POST /v1/jobs"); the
// error h returns is answered through the error table.
func (s *Server) Handle(pattern string, h HandlerFunc) { s.mux.Handle(pattern, Handler(h)) }

// Handler returns the API handler for a listener: requests a web page could
// have sent are refused (guard), the listener's token is required, and a
// panic in a handler answers 500.
func (s *Server) Handler(l Listener) http.Handler {
	var h http.Handler = s.mux
	if l.Token != "" {
		h = requireToken(l.Token, h)
	}
	return s.recoverer(s.guard(l, h))
}

// Serve serves the API on ln until ctx ends, then drains for up to drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener, l Listener, drain time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(l),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeErrorCode(w, api.CodeUnauthorized, 0, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.opts.Log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeErrorCode(w, api.CodeInternal, 0, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	resp := api.ModelsResponse{Models: []api.Model{}}
	for _, m := range s.opts.Sched.Models() {
		resp.Models = append(resp.Models, apiModel(m))
	}
	if len(resp.Models) == 0 {
		resp.Hint = s.opts.ModelsHint
	}
	respond.JSON(w, http.StatusOK, resp)
}

func apiModel(m sched.ModelInfo) api.Model {
	am := api.Model{Name: m.Name, Version: m.Version, Backend: m.Backend, Origin: m.Origin, State: string(m.State),
		Error: m.Error, Device: m.Device, MaxBatch: m.MaxBatch, WarmupMS: m.WarmupMS, Bytes: m.Bytes,
		Format: m.Descriptor.Format, Output: m.Descriptor.Output, Classes: len(m.Descriptor.Classes)}
	if !m.LastUsed.IsZero() {
		t := m.LastUsed.UTC()
		am.LastUsed = &t
	}
	if m.Descriptor.InputWidth > 0 {
		am.Input = fmt.Sprintf("%dx%d", m.Descriptor.InputWidth, m.Descriptor.InputHeight)
	}
	return am
}

// handleLoad loads a model now (POST /v1/models/{name}/load) and answers
// with it once it is ready.
func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.opts.Sched.Load(r.Context(), name); err != nil {
		return err
	}
	return s.writeModel(w, name)
}

// handleUnload frees a model's memory (POST /v1/models/{name}/unload); it
// stays listed and loads again when asked for.
func (s *Server) handleUnload(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.opts.Sched.Unload(r.Context(), name); err != nil {
		return err
	}
	return s.writeModel(w, name)
}

func (s *Server) writeModel(w http.ResponseWriter, name string) error {
	n, _, _ := strings.Cut(name, ":")
	for _, m := range s.opts.Sched.Models() {
		if m.Name == n {
			respond.JSON(w, http.StatusOK, apiModel(m))
			return nil
		}
	}
	return fmt.Errorf("%w %q", sched.ErrUnknownModel, name)
}

func (s *Server) handleBackends(w http.ResponseWriter, r *http.Request) {
	resp := api.BackendsResponse{Backends: []api.Backend{}}
	if s.opts.Backends != nil {
		resp.Backends = append(resp.Backends, s.opts.Backends(r.Context())...)
	}
	respond.JSON(w, http.StatusOK, resp)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	respond.JSON(w, http.StatusOK, api.Readiness{Status: "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	var why []string
	if s.opts.Backends != nil {
		for _, b := range s.opts.Backends(r.Context()) {
			if b.State != "ready" {
				msg := fmt.Sprintf("backend %s is %s", b.Name, b.State)
				if b.LastError != "" {
					msg += ": " + b.LastError
				}
				why = append(why, msg)
			}
		}
	}
	if ok, reasons := s.opts.Sched.Ready(); !ok {
		why = append(why, reasons...)
	}
	for _, check := range s.opts.ReadyChecks {
		why = append(why, check(r.Context())...)
	}
	if len(why) > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterFor(api.CodeUnavailable)))
		respond.JSON(w, http.StatusServiceUnavailable, api.Readiness{Status: "not_ready", Reasons: why})
		return
	}
	respond.JSON(w, http.StatusOK, api.Readiness{Status: "ok"})
}

// queryOrForm returns a request parameter from the query string or, for
// multipart requests, the already-parsed form.
func queryOrForm(r *http.Request, key string) string {
	if v := r.URL.Query().Get(key); v != "" {
		return v
	}
	if r.MultipartForm != nil {
		if v := r.MultipartForm.Value[key]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}
