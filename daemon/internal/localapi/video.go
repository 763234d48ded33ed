package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/azaion/edge/daemon/internal/outputs"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/videosrc"
)

// VideoOptions configure POST /v1/detect/video.
type VideoOptions struct {
	// MediaDir is the only folder `path` requests may name; empty refuses them.
	MediaDir string
	// SpoolDir holds uploaded videos while the backend reads them.
	SpoolDir string
	// MaxUploadBytes bounds an upload (413 above).
	MaxUploadBytes int64
	// MaxFrames and MaxDuration bound the part of a video one request decodes (422 above).
	MaxFrames   int64
	MaxDuration time.Duration
	// MaxJobs bounds the videos processed at once (429 above).
	MaxJobs int
	// Every is the default frame step.
	Every int
	// AnnotateCodec is the annotated video's codec (mp4v or avc1).
	AnnotateCodec string
	// Outputs keeps the annotated videos.
	Outputs *outputs.Store
}

// videoJob is one POST /v1/detect/video.
type videoJob struct {
	s       *Server
	w       http.ResponseWriter
	rc      *http.ResponseController
	start   time.Time
	every   int
	started bool // the 200 and the header line are out
	enc     *json.Encoder
	model   sched.ModelInfo
	frames  int64
	summary *backend.VideoSummary
	output  *api.OutputRef
}

func (s *Server) handleDetectVideo(w http.ResponseWriter, r *http.Request) {
	vo := s.opts.Video
	job := &videoJob{s: s, w: w, rc: http.NewResponseController(w), start: time.Now()}
	status := api.CodeInternal
	model := ""
	defer func() { s.metrics.videoRequests.WithLabelValues(s.metricsModel(model), status).Inc() }()
	fail := func(err error) {
		status, _ = classify(err)
		WriteError(w, err)
	}
	select {
	case s.videoSlots <- struct{}{}:
		defer func() { <-s.videoSlots }()
	default:
		fail(fmt.Errorf("%w: %d videos are being processed (video.max_jobs)", errVideoBusy, vo.MaxJobs))
		return
	}
	src, cleanup, err := s.videoSource(w, r)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fail(err)
		return
	}
	model = queryOrForm(r, "model")
	req, err := s.videoRequest(r, src)
	if err != nil {
		fail(err)
		return
	}
	job.every = req.Every
	outID := ""
	if b, _ := strconv.ParseBool(queryOrForm(r, "annotate")); b {
		outID, req.Annotate = vo.Outputs.Reserve()
		defer func() {
			if outID != "" {
				vo.Outputs.Discard(outID)
			}
		}()
	}
	err = s.opts.Sched.DetectVideo(r.Context(), model, req, job.emit)
	if err == nil && outID != "" && job.summary != nil {
		var o outputs.Output
		if o, err = vo.Outputs.Commit(outID); err == nil {
			job.output = &api.OutputRef{ID: o.ID, URL: "/v1/outputs/" + o.ID, Bytes: o.Size, Expires: o.Expires}
		}
		outID = ""
	}
	if !job.started {
		if err == nil {
			err = errors.New("the backend ended the video without a result")
		}
		fail(err)
		return
	}
	if r.Context().Err() != nil {
		status = "client_gone"
		return
	}
	status = "ok"
	if err != nil {
		status, _ = classify(err)
	}
	job.finish(err)
}

// videoSource returns the absolute path of the video to decode: a file of
// the media folder (`path`), or the upload (raw body or multipart field
// "video") spooled to a file that cleanup removes.
func (s *Server) videoSource(w http.ResponseWriter, r *http.Request) (string, func(), error) {
	vo := s.opts.Video
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, vo.MaxUploadBytes)
	if t := s.opts.BodyTimeout; t > 0 {
		// A large upload may take long, but it must keep coming: each read
		// gets the body timeout, and the deadline goes once it is in.
		rc := http.NewResponseController(w)
		r.Body = &idleBody{ReadCloser: r.Body, rc: rc, idle: t}
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	var body io.Reader = r.Body
	var rest func() error // reads the form fields after the video part
	if mt == "multipart/form-data" {
		mr, part, fields, err := multipartVideo(r, params["boundary"])
		if err != nil {
			return "", nil, err
		}
		r.MultipartForm = &multipart.Form{Value: fields}
		body = part
		rest = func() error { return readFields(mr, fields) }
	}
	if p := queryOrForm(r, "path"); p != "" {
		path, err := mediaPath(vo.MediaDir, p)
		if err != nil {
			return "", nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %v", errNoSuchVideo, err)
		}
		head := make([]byte, 512)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if err := checkVideo(head[:n]); err != nil {
			return "", nil, err
		}
		return path, nil, nil
	}
	if body == nil {
		return "", nil, fmt.Errorf("%w: multipart body has no file field \"video\"", errBadRequest)
	}
	f, err := os.CreateTemp(vo.SpoolDir, "upload-*.video")
	if err != nil {
		return "", nil, fmt.Errorf("spool the upload: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	head := make([]byte, 512)
	n, rerr := io.ReadFull(body, head)
	if n == 0 {
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return "", cleanup, uploadError(rerr, vo.MaxUploadBytes)
		}
		return "", cleanup, fmt.Errorf("%w: empty body: send the video as the body, as multipart field \"video\", or name a file of the media folder with path", errBadRequest)
	}
	if err := checkVideo(head[:n]); err != nil {
		return "", cleanup, err
	}
	if _, err := f.Write(head[:n]); err != nil {
		return "", cleanup, fmt.Errorf("spool the upload: %w", err)
	}
	if _, err := io.Copy(f, body); err != nil {
		return "", cleanup, uploadError(err, vo.MaxUploadBytes)
	}
	if rest != nil {
		if err := rest(); err != nil {
			return "", cleanup, err
		}
	}
	if err := f.Close(); err != nil {
		return "", cleanup, fmt.Errorf("spool the upload: %w", err)
	}
	return f.Name(), cleanup, nil
}

// idleBody is a request body whose every read must complete within idle.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: no upload data for %s", errBodyTimeout, b.idle)
	}
	return n, err
}

func uploadError(err error, limit int64) error {
	if errors.Is(err, errBodyTimeout) {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("the video is over the %d-byte upload limit (video.max_upload_bytes): %w", limit, err)
	}
	return fmt.Errorf("%w: read the upload: %v", errBadRequest, err)
}

// multipartVideo reads the form fields of a multipart body up to the file
// field "video" and returns a reader of that part (nil when there is none).
func multipartVideo(r *http.Request, boundary string) (*multipart.Reader, io.Reader, map[string][]string, error) {
	if boundary == "" {
		return nil, nil, nil, fmt.Errorf("%w: multipart body without a boundary", errBadRequest)
	}
	mr := multipart.NewReader(r.Body, boundary)
	fields := map[string][]string{}
	part, err := nextVideoPart(mr, fields)
	return mr, part, fields, err
}

// nextVideoPart reads form fields into fields until the "video" part, which
// it returns (nil at the end of the body).
func nextVideoPart(mr *multipart.Reader, fields map[string][]string) (io.Reader, error) {
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, uploadError(err, 0)
		}
		if p.FormName() == "video" {
			return p, nil
		}
		if p.FileName() != "" {
			return nil, fmt.Errorf("%w: unexpected file field %q (send the video as field \"video\")", errBadRequest, p.FormName())
		}
		v, err := io.ReadAll(io.LimitReader(p, 4096))
		if err != nil {
			return nil, uploadError(err, 0)
		}
		fields[p.FormName()] = append(fields[p.FormName()], strings.TrimSpace(string(v)))
	}
}

// readFields reads the form fields after the video part.
func readFields(mr *multipart.Reader, fields map[string][]string) error {
	p, err := nextVideoPart(mr, fields)
	if err != nil {
		return err
	}
	if p != nil {
		return fmt.Errorf("%w: two \"video\" fields", errBadRequest)
	}
	return nil
}

// mediaPath resolves a `path` parameter to a regular file inside dir
// (symbolic links followed, and the result still inside dir).
func mediaPath(dir, p string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: path requests are disabled (set video.media_dir)", errBadRequest)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("media folder: %w", err)
	}
	full := p
	if !filepath.IsAbs(p) {
		full = filepath.Join(dir, p)
	}
	resolved, err := filepath.EvalSymlinks(filepath.Clean(full))
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("%w: %s is not in the media folder %s", errNoSuchVideo, p, dir)
		}
		return "", fmt.Errorf("%w: %v", errBadRequest, err)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %s is outside the media folder %s", errNotInMedia, p, dir)
	}
	st, err := os.Stat(resolved)
	if err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", errBadRequest, p)
	}
	return resolved, nil
}

// checkVideo looks at the first bytes of a file: what is not a video
// container or stream format FFmpeg reads is refused (415).
func checkVideo(head []byte) error {
	if videosrc.Format(head) != "" {
		return nil
	}
	return fmt.Errorf("%w: the body is %s, not a video (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg, ASF or a raw H.264/H.265 stream)", errNotVideo, http.DetectContentType(head))
}

// videoRequest builds the backend request from the parameters.
func (s *Server) videoRequest(r *http.Request, src string) (backend.VideoRequest, error) {
	vo := s.opts.Video
	params, err := parseParams(r)
	if err != nil {
		return backend.VideoRequest{}, err
	}
	req := backend.VideoRequest{Source: src, Every: vo.Every, Params: backend.DetectParams{Params: params},
		MaxFrames: vo.MaxFrames, MaxDuration: vo.MaxDuration, AnnotateCodec: vo.AnnotateCodec}
	if v := queryOrForm(r, "every"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return req, fmt.Errorf("%w: every=%q: want an integer from 1 to 1000", errBadRequest, v)
		}
		req.Every = n
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"start", &req.Start}, {"duration", &req.Duration}} {
		v := queryOrForm(r, d.key)
		if v == "" {
			continue
		}
		dur, err := parseSeconds(v)
		if err != nil {
			return req, fmt.Errorf("%w: %s=%q: want seconds (12.5) or a duration (1m30s)", errBadRequest, d.key, v)
		}
		*d.dst = dur
	}
	if v := queryOrForm(r, "annotate"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return req, fmt.Errorf("%w: annotate=%q: want true or false", errBadRequest, v)
		}
	}
	return req, nil
}

// parseSeconds reads "12.5" as seconds or "1m30s" as a Go duration.
func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e7 {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

// emit turns backend events into NDJSON lines.
func (j *videoJob) emit(m sched.ModelInfo, ev backend.VideoEvent) error {
	switch {
	case ev.Info != nil:
		j.model = m
		i := ev.Info
		j.w.Header().Set("Content-Type", "application/x-ndjson")
		j.w.Header().Set("X-Content-Type-Options", "nosniff")
		j.w.WriteHeader(http.StatusOK)
		j.started = true
		j.enc = json.NewEncoder(j.w)
		return j.line(struct {
			Video api.VideoHeader `json:"video"`
		}{api.VideoHeader{Model: m.Name, Version: m.Version, Backend: m.Backend, Device: m.Device,
			Width: i.Width, Height: i.Height, FPS: round4(i.FPS), Frames: i.Frames, DurationMS: api.MS(i.Duration),
			Codec: i.Codec, Container: i.Container, FirstFrame: i.FirstFrame, ToDecode: i.ToDecode,
			Every: j.every, MaxBatch: i.MaxBatch}})
	case ev.Frame != nil:
		f := ev.Frame
		t := f.Result.Timings
		j.frames++
		j.s.metrics.videoFrames.WithLabelValues(m.Name).Inc()
		j.s.metrics.observeStages(m.Name, t.Queue, t.Infer, f.Result.BatchSize)
		return j.line(api.VideoFrame{Frame: f.Frame, PTSMS: api.MS(f.PTS),
			Detections: toAPIDetections(f.Result.Detections, m.Descriptor.Classes),
			TimingsMS: api.TimingsMS{Queue: api.MS(t.Queue), Decode: api.MS(t.Decode), Preprocess: api.MS(t.Preprocess),
				Infer: api.MS(t.Infer), Postprocess: api.MS(t.Post), Total: api.MS(t.Decode + t.Preprocess + t.Queue + t.Infer + t.Post)},
			BatchSize: f.Result.BatchSize})
	case ev.Summary != nil:
		j.summary = ev.Summary
	}
	return nil
}

// line writes one NDJSON line and flushes it to the client.
func (j *videoJob) line(v any) error {
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("write to the client: %w", err)
	}
	if err := j.rc.Flush(); err != nil {
		return fmt.Errorf("write to the client: %w", err)
	}
	return nil
}

// finish writes the summary line; err is why the video ended early.
func (j *videoJob) finish(err error) {
	out := api.VideoSummary{FramesProcessed: j.frames, Output: j.output}
	if s := j.summary; s != nil {
		out.FramesDecoded, out.FramesProcessed, out.FramesDropped, out.FramesWritten = s.Decoded, s.Processed, s.Dropped, s.Written
		out.StagesMS = api.StageMS{Decode: api.MS(s.Decode), Preprocess: api.MS(s.Timings.Preprocess), Queue: api.MS(s.Timings.Queue),
			Infer: api.MS(s.Timings.Infer), Postprocess: api.MS(s.Timings.Post), Write: api.MS(s.Write)}
		out.MaxBatch = s.MaxBatch
		out.Error = s.Err
	}
	wall := time.Since(j.start)
	out.WallMS = api.MS(wall)
	if sec := wall.Seconds(); sec > 0 {
		out.FPS = round2(float32(float64(out.FramesProcessed) / sec))
		out.DecodedFPS = round2(float32(float64(out.FramesDecoded) / sec))
	}
	if err != nil {
		msg := err.Error()
		if out.Error != "" {
			msg = out.Error + "; " + msg
		}
		out.Error = msg
	}
	_ = j.line(struct {
		Summary api.VideoSummary `json:"summary"`
	}{out})
}
