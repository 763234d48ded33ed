// Package respond writes the daemon's HTTP answers that are not errors: a
// JSON body, and a stream of server-sent events with keep-alives. It is a
// leaf every route package (localapi, jobs, streams, distribution) may
// import; errors are answered by localapi's one error table. It is imported
// only by the daemon.
package respond

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// JSON answers with v as JSON and the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Heartbeat is how often an idle event stream gets a comment line, so
// proxies and clients see the connection alive.
const Heartbeat = 15 * time.Second

// Events is a server-sent event stream being answered.
type Events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// SSE starts a server-sent event stream (status 200, no caching, no proxy
// buffering).
func SSE(w http.ResponseWriter) *Events {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &Events{w: w, rc: http.NewResponseController(w)}
}

// Send writes one event of the given kind with v as its JSON data and
// flushes it; false means the client is gone.
func (e *Events) Send(kind string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// KeepAlive writes a comment line; false means the client is gone.
func (e *Events) KeepAlive() bool {
	if _, err := io.WriteString(e.w, ": keep-alive\n\n"); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}
