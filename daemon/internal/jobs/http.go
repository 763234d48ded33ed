package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/azaion/edge/sdk/api"
)

// heartbeat is how often an idle event stream gets a comment line, so
// proxies and clients see the connection alive.
const heartbeat = 15 * time.Second

// Register adds the job routes with handle (e.g. localapi.Server.Handle or
// http.ServeMux.Handle): GET/POST /v1/jobs, GET/DELETE /v1/jobs/{id},
// GET /v1/jobs/{id}/events (server-sent events).
func (m *Manager) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /v1/jobs", http.HandlerFunc(m.handleList))
	handle("POST /v1/jobs", http.HandlerFunc(m.handleCreate))
	handle("GET /v1/jobs/{id}", http.HandlerFunc(m.handleGet))
	handle("DELETE /v1/jobs/{id}", http.HandlerFunc(m.handleCancel))
	handle("GET /v1/jobs/{id}/events", http.HandlerFunc(m.handleEvents))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr maps the registry's errors to the API error envelope.
func writeErr(w http.ResponseWriter, err error) {
	code := api.CodeInternal
	switch {
	case errors.Is(err, ErrNotFound):
		code = api.CodeNotFound
	case errors.Is(err, ErrBadJob):
		code = api.CodeBadRequest
	case errors.Is(err, ErrConflict):
		code = api.CodeConflict
	case errors.Is(err, ErrClosed):
		code = api.CodeUnavailable
	}
	writeJSON(w, api.StatusForCode(code), api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: err.Error()}})
}

func (m *Manager) handleList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.JobList{Jobs: m.List()})
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req api.JobRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, fmt.Errorf("%w: body: %v", ErrBadJob, err))
		return
	}
	j, err := m.Create(req)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, j)
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	j, err := m.Get(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (m *Manager) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, err := m.Cancel(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// handleEvents streams a job's progress as server-sent events: first the
// current state, then each progress event, and last an "end" event with the
// job in its final state.
func (m *Manager) handleEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, ch, unsub, err := m.Subscribe(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer unsub()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(kind string, v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(api.EventProgress, api.JobEvent{Progress: info.Progress, Stage: info.Stage, Message: info.Message, Metrics: info.Metrics, Time: time.Now().UTC()}) {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				final, err := m.Get(id)
				if err != nil {
					return
				}
				send(api.EventEnd, api.JobEvent{Progress: final.Progress, Stage: final.Stage, Message: final.Message, Metrics: final.Metrics, Time: time.Now().UTC(), Job: &final})
				return
			}
			if !send(api.EventProgress, ev) {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
