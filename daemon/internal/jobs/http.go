package jobs

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/sdk/api"
)

// Register adds the job routes with handle (localapi.Server.Handle, which
// answers the errors a route returns): GET/POST /v1/jobs, GET/DELETE
// /v1/jobs/{id}, GET /v1/jobs/{id}/events (server-sent events).
func (m *Manager) Register(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/jobs", m.handleList)
	handle("POST /v1/jobs", m.handleCreate)
	handle("GET /v1/jobs/{id}", m.handleGet)
	handle("DELETE /v1/jobs/{id}", m.handleCancel)
	handle("GET /v1/jobs/{id}/events", m.handleEvents)
	handle("GET /v1/jobs/{id}/log", m.handleLog)
}

// handleLog serves a job's log (the training worker's console output).
func (m *Manager) handleLog(w http.ResponseWriter, r *http.Request) error {
	j, err := m.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	path := m.logPath(j.ID)
	f, err := os.Open(path)
	if err != nil || path == "" {
		return fmt.Errorf("%w: job %s has no log", ErrNotFound, j.ID)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.Copy(w, f)
	return nil
}

func (m *Manager) handleList(w http.ResponseWriter, _ *http.Request) error {
	list := api.JobList{Jobs: m.List()}
	if m.opts.Trainer != nil {
		st := m.opts.Trainer()
		list.Trainer = &st
	}
	respond.JSON(w, http.StatusOK, list)
	return nil
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) error {
	var req api.JobRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("%w: body: %v", ErrBadJob, err)
	}
	j, err := m.Create(req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	respond.JSON(w, http.StatusCreated, j)
	return nil
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) error {
	j, err := m.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	respond.JSON(w, http.StatusOK, j)
	return nil
}

func (m *Manager) handleCancel(w http.ResponseWriter, r *http.Request) error {
	j, err := m.Cancel(r.PathValue("id"))
	if err != nil {
		return err
	}
	respond.JSON(w, http.StatusOK, j)
	return nil
}

// handleEvents streams a job's progress as server-sent events: first the
// current state, then each progress event, and last an "end" event with the
// job in its final state.
func (m *Manager) handleEvents(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	info, ch, unsub, err := m.Subscribe(id)
	if err != nil {
		return err
	}
	defer unsub()
	events := respond.SSE(w)
	send := events.Send
	if !send(api.EventProgress, api.JobEvent{Progress: info.Progress, Stage: info.Stage, Message: info.Message, Metrics: info.Metrics, Time: time.Now().UTC()}) {
		return nil
	}
	tick := time.NewTicker(respond.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				final, err := m.Get(id)
				if err != nil {
					return nil
				}
				send(api.EventEnd, api.JobEvent{Progress: final.Progress, Stage: final.Stage, Message: final.Message, Metrics: final.Metrics, Time: time.Now().UTC(), Job: &final})
				return nil
			}
			if !send(api.EventProgress, ev) {
				return nil
			}
		case <-tick.C:
			if !events.KeepAlive() {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
