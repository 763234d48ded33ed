package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/outputs"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/daemon/internal/streams"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// TestErrorTable: every error value the handlers return, wrapped as they
// wrap it, gets its code and status, and every 429 and 503 a Retry-After.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{sched.ErrUnknownModel, api.CodeNotFound, 404},
		{sched.ErrNoModel, api.CodeBadRequest, 400},
		{sched.ErrQueueFull, api.CodeQueueFull, 429},
		{sched.ErrUnavailable, api.CodeUnavailable, 503},
		{sched.ErrBadModel, api.CodeUnprocessable, 422},
		{sched.ErrUnsupported, api.CodeUnsupported, 501},
		{sched.ErrBadSource, api.CodeUnprocessable, 422},
		{jobs.ErrNotFound, api.CodeNotFound, 404},
		{jobs.ErrBadJob, api.CodeBadRequest, 400},
		{jobs.ErrConflict, api.CodeConflict, 409},
		{jobs.ErrClosed, api.CodeUnavailable, 503},
		{distribution.ErrBadRequest, api.CodeBadRequest, 400},
		{distribution.ErrNotConfigured, api.CodeUnavailable, 503},
		{distribution.ErrImportBusy, api.CodeQueueFull, 429},
		{distribution.ErrBodyTimeout, api.CodeTimeout, 408},
		{catalog.ErrShadowed, api.CodeConflict, 409},
		{errBodyTimeout, api.CodeTimeout, 408},
		{errBusy, api.CodeQueueFull, 429},
		{errBadRequest, api.CodeBadRequest, 400},
		{errNotImage, api.CodeUnsupportedType, 415},
		{errBadImage, api.CodeUnprocessable, 422},
		{errNotVideo, api.CodeUnsupportedType, 415},
		{errVideoBusy, api.CodeQueueFull, 429},
		{errNotInMedia, api.CodeForbidden, 403},
		{errNoSuchVideo, api.CodeNotFound, 404},
		{outputs.ErrNotFound, api.CodeNotFound, 404},
		{streams.ErrNotFound, api.CodeNotFound, 404},
		{streams.ErrBad, api.CodeBadRequest, 400},
		{streams.ErrExists, api.CodeConflict, 409},
		{streams.ErrTooMany, api.CodeQueueFull, 429},
		{context.DeadlineExceeded, api.CodeUnavailable, 503},
		{&http.MaxBytesError{Limit: 10}, api.CodeTooLarge, 413},
		{errors.New("something else"), api.CodeInternal, 500},
	}
	if len(tests) != len(errorTable)+2 {
		t.Errorf("the test covers %d table rows, the table has %d", len(tests)-2, len(errorTable))
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			wrapped := fmt.Errorf("model x: %w", tc.err)
			rec := httptest.NewRecorder()
			WriteError(rec, wrapped)
			var body api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || body.Error.Code != tc.code || body.Error.Message != wrapped.Error() {
				t.Errorf("got %d %+v, want %d %s with the error's message", rec.Code, body.Error, tc.status, tc.code)
			}
			ra := rec.Header().Get("Retry-After")
			if (tc.status == 429 || tc.status == 503) != (ra != "") {
				t.Errorf("status %d with Retry-After %q", tc.status, ra)
			}
		})
	}
}

// TestSchedBackendErrors: the backend's sentinels come out of the scheduler
// as its own and reach the client as 4xx/5xx other than 500.
func TestSchedBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{backend.ErrBadModel, 422},
		{backend.ErrUnsupported, 501},
		{backend.ErrUnavailable, 503},
		{backend.ErrBadSource, 422},
	} {
		b := &failingBackend{err: fmt.Errorf("plugin says: %w", tc.err)}
		s := sched.New(staticBackends{b}, sched.Options{QueueSize: 4, Log: discardLog()})
		if err := s.Add(sched.Source{Descriptor: modelDesc("m"), Backend: "x",
			Open: func(context.Context) ([]byte, error) { return []byte("m"), nil }}); err != nil {
			t.Fatal(err)
		}
		if err := s.Load(context.Background(), "m"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Detect(context.Background(), "m", [][]byte{[]byte("img")}, backend.DetectParams{})
		rec := httptest.NewRecorder()
		WriteError(rec, err)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), "plugin says") {
			t.Errorf("%v: %d %s, want %d with the plugin's message", tc.err, rec.Code, rec.Body, tc.status)
		}
		if tc.err == backend.ErrUnsupported {
			continue // DetectVideo below
		}
		err = s.DetectVideo(context.Background(), "m", backend.VideoRequest{}, func(sched.ModelInfo, backend.VideoEvent) error { return nil })
		rec = httptest.NewRecorder()
		WriteError(rec, err)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), "plugin says") {
			t.Errorf("video %v: %d %s, want %d with the plugin's message", tc.err, rec.Code, rec.Body, tc.status)
		}
	}
}

// failingBackend loads any model and fails every Detect with err.
type failingBackend struct{ err error }

func (b *failingBackend) Info(context.Context) (*backend.Info, error) { return &backend.Info{}, nil }
func (b *failingBackend) Load(_ context.Context, d model.Descriptor, _ []byte) (*backend.LoadResult, error) {
	return &backend.LoadResult{Handle: "h", Descriptor: d, MaxBatch: 1}, nil
}
func (b *failingBackend) Detect(context.Context, string, [][]byte, backend.DetectParams) ([]backend.ImageResult, error) {
	return nil, b.err
}
func (b *failingBackend) DetectVideo(context.Context, string, backend.VideoRequest, func(backend.VideoEvent) error) error {
	return b.err
}
func (b *failingBackend) Unload(context.Context, string) error          { return nil }
func (b *failingBackend) Health(context.Context) error                  { return nil }
func (b *failingBackend) Stats(context.Context) (*backend.Stats, error) { return &backend.Stats{}, nil }

// staticBackends gives the scheduler one backend under every name.
type staticBackends struct{ b backend.Backend }

func (s staticBackends) Backend(string) (backend.Backend, error) { return s.b, nil }
func (s staticBackends) Failed(string)                           {}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func modelDesc(name string) model.Descriptor { return model.Descriptor{Name: name} }
