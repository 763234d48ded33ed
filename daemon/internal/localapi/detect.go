package localapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/imageheader"
	"github.com/azaion/edge/sdk/shmem"
	"github.com/azaion/edge/sdk/yolo"
)

func (s *Server) handleDetect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	model := ""
	status := api.CodeInternal
	defer func() { s.metrics.observeRequest(model, status, time.Since(start)) }()
	fail := func(err error) {
		status, _ = classify(err)
		s.metrics.requestErrors.WithLabelValues(status).Inc()
		WriteError(w, err)
	}

	select {
	case s.uploads <- struct{}{}:
	default:
		fail(fmt.Errorf("%w: %d uploads are in progress; try again", errBusy, cap(s.uploads)))
		return
	}
	img, err := readImage(w, r, s.opts.MaxBodyBytes, s.opts.BodyTimeout, s.opts.Shared)
	<-s.uploads
	if err != nil {
		fail(err)
		return
	}
	if s.opts.Shared != nil {
		// Once Detect has returned, the backend is done with the image, or
		// (a failed call) the backend client holds its slot for a while.
		defer s.opts.Shared.Free(img)
	}
	name := queryOrForm(r, "model")
	model = s.metricsModel(name)
	params, err := parseParams(r)
	if err != nil {
		fail(err)
		return
	}
	cfg, err := checkImage(img, s.opts.MaxPixels)
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	res, err := s.opts.Sched.Detect(ctx, name, [][]byte{img}, backend.DetectParams{Params: params, MaxPixels: s.opts.MaxPixels})
	if err != nil {
		fail(err)
		return
	}
	ir := res.Images[0]
	if ir.Err != nil {
		fail(imageError(ir.Err))
		return
	}
	model = res.Model.Name
	status = "ok"
	resp := api.DetectResponse{
		Model: res.Model.Name, Version: res.Model.Version, Backend: res.Model.Backend, Device: res.Model.Device,
		Image:      api.ImageSize{Width: ir.Width, Height: ir.Height},
		Detections: toAPIDetections(ir.Detections, res.Model.Descriptor.Classes),
		BatchSize:  ir.BatchSize,
	}
	if resp.Image.Width == 0 {
		w, h := cfg.OrientedSize()
		resp.Image = api.ImageSize{Width: w, Height: h}
	}
	t := ir.Timings
	resp.TimingsMS = api.TimingsMS{
		Queue: api.MS(res.Queue + t.Queue), Decode: api.MS(t.Decode), Preprocess: api.MS(t.Preprocess),
		Infer: api.MS(t.Infer), Postprocess: api.MS(t.Post), Total: api.MS(time.Since(start)),
	}
	s.metrics.observeStages(res.Model.Name, res.Queue+t.Queue, t.Infer, ir.BatchSize)
	respond.JSON(w, http.StatusOK, resp)
}

// readImage returns the image bytes from a multipart field "image" or the
// raw body, which must arrive within timeout. A raw body of known length
// is read into a slot of shared when it has one free (the caller frees it).
func readImage(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration, shared *shmem.Pool) ([]byte, error) {
	if timeout > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	}
	img, err := readBody(w, r, limit, shared)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("%w: the request body did not arrive within %s", errBodyTimeout, timeout)
	}
	return img, err
}

// readBody reads the image once into one buffer sized from the request (no
// copy as it grows, none out of a parsed form): that buffer is what goes to
// the backend.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, shared *shmem.Pool) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "multipart/form-data" {
		return readMultipartImage(r, limit)
	}
	if shared != nil && r.ContentLength > 0 && r.ContentLength <= limit {
		if slot := shared.Alloc(int(r.ContentLength)); slot != nil {
			// net/http ends a body with a Content-Length at that length.
			if _, err := io.ReadFull(r.Body, slot); err != nil {
				shared.Free(slot)
				return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
			}
			return slot, nil
		}
	}
	b, err := readAll(r.Body, r.ContentLength, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("request body is over the %d-byte limit: %w", limit, err)
		}
		return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty body: send the image as the body or as multipart field \"image\"", errBadRequest)
	}
	return b, nil
}

// Limits of the non-file fields of a multipart detect request.
const (
	maxFormFields     = 32
	maxFormFieldBytes = 4 << 10
)

// readMultipartImage streams a multipart body: the first file field "image"
// is read straight into its buffer, the other fields (model, conf ...) into
// r.MultipartForm.Value, where queryOrForm finds them.
func readMultipartImage(r *http.Request, limit int64) ([]byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: multipart body: %w", errBadRequest, err)
	}
	form := &multipart.Form{Value: map[string][]string{}}
	r.MultipartForm = form
	var img []byte
	found := false
	for fields := 0; ; fields++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: multipart body: %w", errBadRequest, err)
		}
		name := part.FormName()
		switch {
		case name == "image" && part.FileName() != "" && !found:
			found = true
			img, err = readAll(part, r.ContentLength, limit)
		case part.FileName() == "" && fields < maxFormFields:
			var v []byte
			v, err = readAll(io.LimitReader(part, maxFormFieldBytes), -1, maxFormFieldBytes)
			form.Value[name] = append(form.Value[name], string(v))
		default:
			_, err = io.Copy(io.Discard, part)
		}
		part.Close()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: multipart field %q: %w", errBadRequest, name, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: multipart body has no file field \"image\"", errBadRequest)
	}
	if len(img) == 0 {
		return nil, fmt.Errorf("%w: field image is empty", errBadRequest)
	}
	return img, nil
}

// readAll reads rd to its end into one buffer of capacity size+1 when
// 0 <= size <= limit (the Content-Length: nothing is copied as it fills),
// growing it only when size is unknown or wrong.
func readAll(rd io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 || size > limit {
		size = 32 << 10
	}
	b := make([]byte, 0, size+1) // +1: the final read sees EOF without growing
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// checkImage reads the image header only (sdk/imageheader, the check the
// backend plugins make too): it rejects what is not an image (415), and
// images whose header is unreadable, whose data is truncated or whose size
// is out of bounds (422), before anything allocates the decoded pixels.
func checkImage(b []byte, maxPixels int64) (imageheader.Header, error) {
	h, err := imageheader.Read(b)
	switch {
	case errors.Is(err, imageheader.ErrNotImage):
		return h, fmt.Errorf("%w: the body is %s, not a JPEG, PNG, BMP or WebP image", errNotImage, http.DetectContentType(b))
	case err != nil:
		return h, fmt.Errorf("%w: cannot read the image header: %v", errBadImage, err)
	}
	if err := h.Check(maxPixels); err != nil {
		return h, fmt.Errorf("%w: %v", errBadImage, err)
	}
	return h, nil
}

func imageError(e *backend.ImageError) error {
	return fmt.Errorf("%w: %s", errBadImage, e.Message)
}

func parseParams(r *http.Request) (yolo.Params, error) {
	p := yolo.Params{Conf: yolo.DefaultConf, IoU: yolo.DefaultIoU, MaxDet: yolo.DefaultMaxDet}
	unit := func(key string, dst *float32) error {
		v := queryOrForm(r, key)
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(v, 32)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return fmt.Errorf("%w: %s=%q: want a number from 0 to 1", errBadRequest, key, v)
		}
		*dst = float32(f)
		return nil
	}
	if err := unit("conf", &p.Conf); err != nil {
		return p, err
	}
	if err := unit("iou", &p.IoU); err != nil {
		return p, err
	}
	if v := queryOrForm(r, "max_det"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return p, fmt.Errorf("%w: max_det=%q: want an integer from 1 to 10000", errBadRequest, v)
		}
		p.MaxDet = n
	}
	if v := queryOrForm(r, "classes"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 || n > 100000 {
				return p, fmt.Errorf("%w: classes=%q: want comma-separated class ids", errBadRequest, v)
			}
			p.Classes = append(p.Classes, n)
		}
	}
	return p, nil
}

// toAPIDetections attaches labels (and, for the Azaion class system, the
// weather mode) to the backend's detections.
func toAPIDetections(ds []yolo.Detection, names []string) []api.Detection {
	return api.FromDetections(ds, names)
}

func round2(f float32) float64 { return math.Round(float64(f)*100) / 100 }
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
