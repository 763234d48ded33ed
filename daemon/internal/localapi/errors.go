package localapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/outputs"
	"github.com/azaion/edge/daemon/internal/respond"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/daemon/internal/streams"
	"github.com/azaion/edge/sdk/api"
)

// Errors of the local API's own request handling.
var (
	errBadRequest = errors.New("bad request")
	errNotImage   = errors.New("not an image")
	errBadImage   = errors.New("unusable image")
	// errBusy: too many requests are uploading their bodies at once.
	errBusy = errors.New("busy")
	// errBodyTimeout: a request body did not arrive in time.
	errBodyTimeout = errors.New("request body too slow")
	// errNotVideo: an upload or media file that is no video format.
	errNotVideo = errors.New("not a video")
	// errVideoBusy: video.max_jobs videos are being processed.
	errVideoBusy = errors.New("too many videos")
	// errNotInMedia: a path request naming a file outside the media folder.
	errNotInMedia = errors.New("path refused")
	// errNoSuchVideo: a path request naming no file of the media folder.
	errNoSuchVideo = errors.New("no such video")
)

// errorTable maps the error values the daemon's handlers return to API
// error codes, in order of precedence: the one place where errors become
// HTTP statuses (api.StatusForCode). retryAfter, in seconds, is sent with
// the answer; every 429 and 503 carries one.
var errorTable = []struct {
	err        error
	code       string
	retryAfter int
}{
	{sched.ErrUnknownModel, api.CodeNotFound, 0},
	{sched.ErrNoModel, api.CodeBadRequest, 0},
	{sched.ErrQueueFull, api.CodeQueueFull, 1},
	{sched.ErrUnavailable, api.CodeUnavailable, 2},
	{sched.ErrBadModel, api.CodeUnprocessable, 0},
	{sched.ErrUnsupported, api.CodeUnsupported, 0},
	{sched.ErrBadSource, api.CodeUnprocessable, 0},
	{jobs.ErrNotFound, api.CodeNotFound, 0},
	{jobs.ErrBadJob, api.CodeBadRequest, 0},
	{jobs.ErrConflict, api.CodeConflict, 0},
	{jobs.ErrClosed, api.CodeUnavailable, 2},
	{distribution.ErrBadRequest, api.CodeBadRequest, 0},
	{distribution.ErrNotConfigured, api.CodeUnavailable, 60},
	{distribution.ErrImportBusy, api.CodeQueueFull, 5},
	{distribution.ErrBodyTimeout, api.CodeTimeout, 0},
	{catalog.ErrShadowed, api.CodeConflict, 0},
	{errBodyTimeout, api.CodeTimeout, 0},
	{errBusy, api.CodeQueueFull, 1},
	{errBadRequest, api.CodeBadRequest, 0},
	{errNotImage, api.CodeUnsupportedType, 0},
	{errBadImage, api.CodeUnprocessable, 0},
	{errNotVideo, api.CodeUnsupportedType, 0},
	{errVideoBusy, api.CodeQueueFull, 5},
	{errNotInMedia, api.CodeForbidden, 0},
	{errNoSuchVideo, api.CodeNotFound, 0},
	{outputs.ErrNotFound, api.CodeNotFound, 0},
	{streams.ErrNotFound, api.CodeNotFound, 0},
	{streams.ErrBad, api.CodeBadRequest, 0},
	{streams.ErrExists, api.CodeConflict, 0},
	{streams.ErrTooMany, api.CodeQueueFull, 5},
	{context.DeadlineExceeded, api.CodeUnavailable, 2},
}

// retryAfterFor is the Retry-After (seconds) of an answer with the given
// code when the error gives none: every 429 and 503 carries one.
func retryAfterFor(code string) int {
	switch api.StatusForCode(code) {
	case http.StatusTooManyRequests:
		return 1
	case http.StatusServiceUnavailable:
		return 2
	}
	return 0
}

// classify returns the API code of err and the Retry-After to send with it.
func classify(err error) (code string, retryAfter int) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return api.CodeTooLarge, 0
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			retry := max(e.retryAfter, retryAfterFor(e.code))
			var hint interface{ RetryAfter() time.Duration }
			if errors.As(err, &hint) && hint.RetryAfter() > 0 {
				retry = int((hint.RetryAfter() + time.Second - 1) / time.Second)
			}
			return e.code, retry
		}
	}
	return api.CodeInternal, 0
}

// HandlerFunc serves a route and returns its error instead of writing it:
// the server answers with the code and status the error table gives. A
// handler that has already started its answer (a stream) reports later
// problems inside the stream and returns nil.
type HandlerFunc = func(w http.ResponseWriter, r *http.Request) error

// Handler adapts a HandlerFunc to an http.Handler that writes its error.
func Handler(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, err)
		}
	})
}

// WriteError answers with err as the JSON error envelope, with the status
// and Retry-After of its code.
func WriteError(w http.ResponseWriter, err error) {
	code, retry := classify(err)
	writeErrorCode(w, code, retry, err.Error())
}

// writeErrorCode answers with the JSON error envelope of code.
func writeErrorCode(w http.ResponseWriter, code string, retryAfter int, msg string) {
	if retryAfter == 0 {
		retryAfter = retryAfterFor(code)
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	respond.JSON(w, api.StatusForCode(code), api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}
