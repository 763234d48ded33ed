package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Job types accepted by POST /v1/jobs.
const (
	JobValidate = "validate" // check labels in data/, move invalid images to data-corrupted/
	JobAugment  = "augment"  // data/ -> data-processed/ (original + 7 variants)
	JobDataset  = "dataset"  // data-processed/ -> datasets/azaion-YYYY-MM-DD/
	JobTrain    = "train"    // train a YOLO model: datasets/... -> <state>/training/<run>/
	JobExport   = "export"   // a run's best.pt -> ONNX / RKNN / TensorRT artifacts
	JobGate     = "gate"     // evaluate a run's artifacts against its best.pt
	JobPublish  = "publish"  // send a run's gated artifacts as one model version
)

// JobState is where a job is in its life.
type JobState string

// Job states. Succeeded, failed, canceled and interrupted are final.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCanceled  JobState = "canceled"
	// JobInterrupted is a job that was running when the daemon stopped.
	JobInterrupted JobState = "interrupted"
)

// Final reports whether the state is final.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCanceled || s == JobInterrupted
}

// JobRequest is the body of POST /v1/jobs.
type JobRequest struct {
	// Type is validate, augment, dataset, train, export, gate or publish.
	Type string `json:"type"`
	// Params override the daemon's configured parameters of the job type
	// (fields as in sdk/trainer ValidateParams, AugmentParams, DatasetParams,
	// TrainParams, ExportParams, GateParams, PublishParams).
	Params json.RawMessage `json:"params,omitempty"`
	// Then are jobs to run one after the other once this one succeeds (a
	// pipeline: train, then export, gate, publish). Each gets the training
	// run of this job as its "run" parameter; a job that fails stops the
	// chain.
	Then []JobRequest `json:"then,omitempty"`
}

// Job is a job as the daemon reports it.
type Job struct {
	ID    string   `json:"id"`
	Type  string   `json:"type"`
	State JobState `json:"state"`
	// Progress is the fraction done (0..1) of the latest event.
	Progress float64 `json:"progress"`
	// Stage and Message are those of the latest event.
	Stage   string `json:"stage,omitempty"`
	Message string `json:"message,omitempty"`
	// Metrics are the latest figures (images_done, images_per_s, eta_s ...).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Error says why a failed job failed.
	Error string `json:"error,omitempty"`
	// Run is the training run the job works on (train, export, gate, publish).
	Run string `json:"run,omitempty"`
	// Params are the job's parameters as it ran them (defaults merged).
	Params json.RawMessage `json:"params,omitempty"`
	// Previous is the job of the same pipeline that started this one; Next
	// the one this job started when it succeeded.
	Previous string `json:"previous,omitempty"`
	Next     string `json:"next,omitempty"`
	// Pending are the pipeline's jobs still to run after this one.
	Pending  []string   `json:"pending,omitempty"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// JobList is the body of GET /v1/jobs.
type JobList struct {
	Jobs []Job `json:"jobs"`
	// Trainer is the state of the trainer plugin that runs the jobs.
	Trainer *PluginState `json:"trainer,omitempty"`
}

// JobEvent is one server-sent event of GET /v1/jobs/{id}/events: "progress"
// events carry the job's progress; the last event, "end", carries the job in
// its final state.
type JobEvent struct {
	// Kind is the SSE event name: progress or end.
	Kind     string             `json:"-"`
	Progress float64            `json:"progress"`
	Stage    string             `json:"stage,omitempty"`
	Message  string             `json:"message,omitempty"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	Time     time.Time          `json:"time"`
	// Job is set on the end event.
	Job *Job `json:"job,omitempty"`
}

// SSE event names.
const (
	EventProgress = "progress"
	EventEnd      = "end"
)

// CreateJob starts a job (POST /v1/jobs).
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	var j Job
	if err := c.Do(ctx, http.MethodPost, "/v1/jobs", req, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// ListJobs lists the daemon's jobs, newest first (GET /v1/jobs).
func (c *Client) ListJobs(ctx context.Context) ([]Job, error) {
	var l JobList
	if err := c.Do(ctx, http.MethodGet, "/v1/jobs", nil, "", &l); err != nil {
		return nil, err
	}
	return l.Jobs, nil
}

// GetJob returns one job (GET /v1/jobs/{id}).
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// JobLog returns a job's log (GET /v1/jobs/{id}/log): the training
// worker's console output for train, export and gate jobs.
func (c *Client) JobLog(ctx context.Context, id string) ([]byte, error) {
	resp, err := c.Raw(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/log", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// CancelJob cancels a job (DELETE /v1/jobs/{id}); it returns the job, which
// reaches the canceled state shortly after.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.Do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// WatchJob follows a job's server-sent events (GET /v1/jobs/{id}/events),
// calling fn for each progress event, and returns the job in its final state
// when the end event arrives. An error from fn stops watching and is returned.
func (c *Client) WatchJob(ctx context.Context, id string, fn func(JobEvent) error) (*Job, error) {
	resp, err := c.Raw(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/events", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var end *Job
	err = ReadSSE(resp.Body, func(ev JobEvent) error {
		if ev.Kind == EventEnd {
			end = ev.Job
			return io.EOF
		}
		if fn != nil {
			return fn(ev)
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if end == nil {
		return nil, fmt.Errorf("job %s: event stream ended without an end event", id)
	}
	return end, nil
}

// ReadSSE reads a text/event-stream of job events, calling fn for each;
// it returns fn's first error, or nil at the end of the stream.
func ReadSSE(r io.Reader, fn func(JobEvent) error) error {
	return ReadEvents(r, func(kind, data string) error {
		var ev JobEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("job event %q: %w", data, err)
		}
		ev.Kind = kind
		if ev.Kind == "" {
			ev.Kind = EventProgress
		}
		return fn(ev)
	})
}

// ReadEvents reads a text/event-stream, calling fn with each event's name
// (empty when it has none) and data; it returns fn's first error, or nil at
// the end of the stream. Comment lines (keep-alives) are skipped.
func ReadEvents(r io.Reader, fn func(kind, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	kind, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				if err := fn(kind, data); err != nil {
					return err
				}
			}
			kind, data = "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data != "" {
				data += "\n"
			}
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
