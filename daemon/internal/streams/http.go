package streams

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

// ModelCheck says whether a model name can be served ("" for the only
// model); nil accepts any name.
type ModelCheck func(name string) error

// Register adds the stream routes with handle (localapi.Server.Handle,
// which answers the errors a route returns): GET/POST /v1/streams,
// GET/DELETE /v1/streams/{id} and GET /v1/streams/{id}/events (server-sent
// events). check, when set, refuses a model that is not served.
func (m *Manager) Register(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error), check ModelCheck) {
	h := &handlers{m: m, check: check}
	handle("GET /v1/streams", h.list)
	handle("POST /v1/streams", h.add)
	handle("GET /v1/streams/{id}", h.get)
	handle("DELETE /v1/streams/{id}", h.remove)
	handle("GET /v1/streams/{id}/events", h.events)
}

type handlers struct {
	m     *Manager
	check ModelCheck
}

func (h *handlers) list(w http.ResponseWriter, _ *http.Request) error {
	respond.JSON(w, http.StatusOK, api.StreamList{Streams: h.m.List()})
	return nil
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	s, err := h.m.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	respond.JSON(w, http.StatusOK, s)
	return nil
}

func (h *handlers) add(w http.ResponseWriter, r *http.Request) error {
	var req api.StreamRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// The decoder may quote the body, and the body holds the source.
		return fmt.Errorf("%w: the body is not a JSON stream request: %s", ErrBad, videosrc.Scrub(err.Error(), req.Source))
	}
	if req.ID != "" && !validID(req.ID) {
		return fmt.Errorf("%w: id %q: want 1-64 letters, digits, '.', '_' or '-'", ErrBad, req.ID)
	}
	if req.Source == "" {
		return fmt.Errorf("%w: no source (an rtsp:// or rtsps:// URL)", ErrBad)
	}
	if h.check != nil {
		if err := h.check(req.Model); err != nil {
			return err
		}
	}
	spec := Spec{ID: req.ID, Source: videosrc.Secret(req.Source), Model: req.Model, Every: req.Every,
		Params: yolo.Params{Conf: float32(req.Conf), IoU: float32(req.IoU), MaxDet: req.MaxDet, Classes: req.Classes}}
	s, err := h.m.Add(spec, "api")
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/streams/"+s.ID)
	respond.JSON(w, http.StatusCreated, s)
	return nil
}

func (h *handlers) remove(w http.ResponseWriter, r *http.Request) error {
	if err := h.m.Remove(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// events streams a session's state changes and detections as server-sent
// events: first its current state, then "frame" and "state" events until
// the session stops or the client goes.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) error {
	s, err := h.m.session(r.PathValue("id"))
	if err != nil {
		return err
	}
	ch, stop := s.watch()
	defer stop()
	ev := respond.SSE(w)
	send := ev.Send
	if !send(api.StreamEventState, s.snapshot()) {
		return nil
	}
	tick := time.NewTicker(respond.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			if !ev.KeepAlive() {
				return nil
			}
		case e, ok := <-ch:
			if !ok {
				snap := s.snapshot()
				snap.State = api.StreamStopped
				send(api.StreamEventState, snap)
				return nil
			}
			var sent bool
			if e.frame != nil {
				sent = send(api.StreamEventFrame, e.frame)
			} else {
				sent = send(api.StreamEventState, e.state)
			}
			if !sent {
				return nil
			}
		}
	}
}
