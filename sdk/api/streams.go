package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// StreamRequest is the body of POST /v1/streams.
type StreamRequest struct {
	// ID names the session (default: a generated one).
	ID string `json:"id,omitempty"`
	// Source is the stream URL (rtsp://, rtsps://), credentials included;
	// it is never shown again.
	Source string `json:"source"`
	// Model is "name" or "name:version" (optional when one model is served).
	Model string `json:"model,omitempty"`
	// Every runs the model on every Every-th frame (default video.every).
	Every   int     `json:"every,omitempty"`
	Conf    float64 `json:"conf,omitempty"`
	IoU     float64 `json:"iou,omitempty"`
	MaxDet  int     `json:"max_det,omitempty"`
	Classes []int   `json:"classes,omitempty"`
}

// Stream states.
const (
	// StreamConnecting: opening the source (again); LastError says what failed last.
	StreamConnecting = "connecting"
	// StreamRunning: frames are flowing.
	StreamRunning = "running"
	// StreamStopped: deleted or the daemon is stopping.
	StreamStopped = "stopped"
)

// Stream is a live stream session (GET /v1/streams).
type Stream struct {
	ID string `json:"id"`
	// Source is the URL with its credentials masked.
	Source string `json:"source"`
	Model  string `json:"model,omitempty"`
	Every  int    `json:"every"`
	// Origin is "config" (declared in the YAML file) or "api".
	Origin string `json:"origin"`
	State  string `json:"state"`
	// Since is when the session entered its state.
	Since time.Time `json:"since"`
	// Width and Height of the frames, once connected.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// FPSIn are the frames decoded per second, FPSOut the frames processed
	// per second (over the last few seconds).
	FPSIn  float64 `json:"fps_in"`
	FPSOut float64 `json:"fps_out"`
	// Frame counters over the session's life; Dropped are the frames due
	// for the model that were skipped to stay real time.
	FramesDecoded   int64 `json:"frames_decoded"`
	FramesProcessed int64 `json:"frames_processed"`
	FramesDropped   int64 `json:"frames_dropped"`
	// Reconnects counts the times the session reopened its source.
	Reconnects int `json:"reconnects"`
	// LastError says why the source last failed (credentials masked).
	LastError string `json:"last_error,omitempty"`
	// LastFrame is when the last result came.
	LastFrame time.Time `json:"last_frame,omitzero"`
}

// StreamList is the body of GET /v1/streams.
type StreamList struct {
	Streams []Stream `json:"streams"`
}

// Stream event names (GET /v1/streams/{id}/events).
const (
	// StreamEventFrame carries a StreamFrame.
	StreamEventFrame = "frame"
	// StreamEventState carries the Stream after a change of state.
	StreamEventState = "state"
)

// StreamFrame is the data of a "frame" event: one processed frame.
type StreamFrame struct {
	Stream     string      `json:"stream"`
	Frame      int64       `json:"frame"`
	Time       time.Time   `json:"time"`
	Width      int         `json:"width"`
	Height     int         `json:"height"`
	Detections []Detection `json:"detections"`
}

// StreamEvent is one event of a stream's event stream: Frame or State is set.
type StreamEvent struct {
	Frame *StreamFrame
	State *Stream
}

// AddStream starts a session (POST /v1/streams).
func (c *Client) AddStream(ctx context.Context, r StreamRequest) (*Stream, error) {
	var s Stream
	if err := c.Do(ctx, http.MethodPost, "/v1/streams", r, "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Streams lists the sessions (GET /v1/streams).
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var l StreamList
	if err := c.Do(ctx, http.MethodGet, "/v1/streams", nil, "", &l); err != nil {
		return nil, err
	}
	return l.Streams, nil
}

// GetStream returns one session (GET /v1/streams/{id}).
func (c *Client) GetStream(ctx context.Context, id string) (*Stream, error) {
	var s Stream
	if err := c.Do(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(id), nil, "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RemoveStream stops and forgets a session (DELETE /v1/streams/{id}).
func (c *Client) RemoveStream(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/streams/"+url.PathEscape(id), nil, "", nil)
}

// WatchStream follows a session's server-sent events (GET
// /v1/streams/{id}/events) until ctx ends, the session stops or fn returns
// an error (which is returned).
func (c *Client) WatchStream(ctx context.Context, id string, fn func(StreamEvent) error) error {
	resp, err := c.Raw(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(id)+"/events", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return ReadEvents(resp.Body, func(kind, data string) error {
		var ev StreamEvent
		switch kind {
		case StreamEventFrame:
			ev.Frame = &StreamFrame{}
			if err := json.Unmarshal([]byte(data), ev.Frame); err != nil {
				return fmt.Errorf("stream event %q: %w", data, err)
			}
		case StreamEventState:
			ev.State = &Stream{}
			if err := json.Unmarshal([]byte(data), ev.State); err != nil {
				return fmt.Errorf("stream event %q: %w", data, err)
			}
		default:
			return nil
		}
		return fn(ev)
	})
}
