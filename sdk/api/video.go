package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// VideoOptions are the parameters of POST /v1/detect/video.
type VideoOptions struct {
	DetectOptions
	// Every runs the model on every Every-th frame (default 4).
	Every int
	// Start skips the start of the video; Duration, when > 0, stops after that much.
	Start, Duration time.Duration
	// Annotate also writes the video with the boxes drawn; the summary line
	// says where to fetch it (GET /v1/outputs/{id}).
	Annotate bool
	// Path names a file inside the daemon's media folder (video.media_dir)
	// instead of uploading one.
	Path string
}

// Query encodes the options as URL query parameters (start and duration in seconds).
func (o VideoOptions) Query() url.Values {
	q := o.DetectOptions.Query()
	if o.Every != 0 {
		q.Set("every", strconv.Itoa(o.Every))
	}
	if o.Start != 0 {
		q.Set("start", strconv.FormatFloat(o.Start.Seconds(), 'f', -1, 64))
	}
	if o.Duration != 0 {
		q.Set("duration", strconv.FormatFloat(o.Duration.Seconds(), 'f', -1, 64))
	}
	if o.Annotate {
		q.Set("annotate", "true")
	}
	if o.Path != "" {
		q.Set("path", o.Path)
	}
	return q
}

// VideoHeader is the first line of a video answer, {"video":{...}}: the
// model and what the daemon will decode.
type VideoHeader struct {
	Model   string  `json:"model"`
	Version string  `json:"version,omitempty"`
	Backend string  `json:"backend"`
	Device  string  `json:"device,omitempty"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	FPS     float64 `json:"fps"`
	// Frames is the number of frames in the file (0 when unknown).
	Frames     int64   `json:"frames"`
	DurationMS float64 `json:"duration_ms"`
	Codec      string  `json:"codec,omitempty"`
	Container  string  `json:"container,omitempty"`
	// FirstFrame is the first frame decoded; ToDecode how many will be (0 when unknown).
	FirstFrame int64 `json:"first_frame"`
	ToDecode   int64 `json:"to_decode"`
	// Every is the frame step; MaxBatch the largest batch frames run in.
	Every    int `json:"every"`
	MaxBatch int `json:"max_batch"`
}

// VideoFrame is one result line, {"frame":N,"pts_ms":T,"detections":[...]}:
// the detections of frame N (0-based) in frame pixels.
type VideoFrame struct {
	Frame      int64       `json:"frame"`
	PTSMS      float64     `json:"pts_ms"`
	Detections []Detection `json:"detections"`
	// TimingsMS are the frame's stage times (decode counts the frames
	// decoded since the previous processed one).
	TimingsMS TimingsMS `json:"timings_ms"`
	BatchSize int       `json:"batch_size"`
}

// StageMS are the summed stage times of a video, in milliseconds. Infer is
// the model time shared out over the frames of each batch.
type StageMS struct {
	Decode      float64 `json:"decode"`
	Preprocess  float64 `json:"preprocess"`
	Queue       float64 `json:"queue"`
	Infer       float64 `json:"infer"`
	Postprocess float64 `json:"postprocess"`
	Write       float64 `json:"write,omitempty"`
}

// OutputRef says where to fetch an annotated video.
type OutputRef struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Bytes   int64     `json:"bytes"`
	Expires time.Time `json:"expires"`
}

// VideoSummary is the last line of a video answer, {"summary":{...}}.
type VideoSummary struct {
	FramesDecoded   int64 `json:"frames_decoded"`
	FramesProcessed int64 `json:"frames_processed"`
	FramesDropped   int64 `json:"frames_dropped,omitempty"`
	FramesWritten   int64 `json:"frames_written,omitempty"`
	// WallMS is the time from the request to the end; FPS the processed
	// frames per second of wall time, DecodedFPS the decoded ones.
	WallMS     float64 `json:"wall_ms"`
	FPS        float64 `json:"fps"`
	DecodedFPS float64 `json:"decoded_fps"`
	StagesMS   StageMS `json:"stages_ms"`
	MaxBatch   int     `json:"max_batch"`
	// Error says why the video ended early (a truncated file, a failed
	// backend); the frames before it were processed.
	Error string `json:"error,omitempty"`
	// Output is the annotated video, when one was asked for.
	Output *OutputRef `json:"output,omitempty"`
}

// VideoLine is any line of a video answer: exactly one of Video, Frame
// (with the VideoFrame fields) and Summary is set.
type VideoLine struct {
	Video      *VideoHeader  `json:"video,omitempty"`
	Summary    *VideoSummary `json:"summary,omitempty"`
	Frame      *int64        `json:"frame,omitempty"`
	PTSMS      float64       `json:"pts_ms,omitempty"`
	Detections []Detection   `json:"detections,omitempty"`
	TimingsMS  *TimingsMS    `json:"timings_ms,omitempty"`
	BatchSize  int           `json:"batch_size,omitempty"`
	// Raw is the line as the daemon sent it.
	Raw json.RawMessage `json:"-"`
}

// DetectVideo sends a video (the raw request body; nil with o.Path set)
// to POST /v1/detect/video and calls fn with each NDJSON line as it
// arrives. An error from fn stops reading (and the daemon stops decoding)
// and is returned. It returns an error when the answer ends without a
// summary line.
func (c *Client) DetectVideo(ctx context.Context, video io.Reader, o VideoOptions, fn func(VideoLine) error) error {
	path := "/v1/detect/video"
	if q := o.Query().Encode(); q != "" {
		path += "?" + q
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var body any
	ct := ""
	if video != nil {
		body, ct = video, "application/octet-stream"
	}
	resp, err := c.Raw(ctx, http.MethodPost, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return ReadVideo(resp.Body, fn)
}

// ReadVideo reads an NDJSON video answer, calling fn for each line.
func ReadVideo(r io.Reader, fn func(VideoLine) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	summary := false
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l VideoLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("video answer line %q: %w", sc.Text(), err)
		}
		l.Raw = append(json.RawMessage(nil), sc.Bytes()...)
		summary = summary || l.Summary != nil
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read video answer: %w", err)
	}
	if !summary {
		return fmt.Errorf("video answer ended without a summary line")
	}
	return nil
}

// Output downloads an output (GET /v1/outputs/{id}) into w.
func (c *Client) Output(ctx context.Context, id string, w io.Writer) (int64, error) {
	resp, err := c.Raw(ctx, http.MethodGet, "/v1/outputs/"+url.PathEscape(id), nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
