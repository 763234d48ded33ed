// Package api holds the types of Azaion Edge's local HTTP API (served on
// 127.0.0.1:8470 and on the Unix socket, same handlers, /v1 prefix) and a Go
// client for it. It is shared by the daemon, the CLI and tests, and may be
// imported by any Go program that talks to the daemon.
package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error codes carried in ErrorBody.Code.
const (
	CodeBadRequest      = "bad_request"       // 400: malformed request or parameter
	CodeUnauthorized    = "unauthorized"      // 401: missing or wrong bearer token
	CodeForbidden       = "forbidden"         // 403: a request a web page made (Host, Origin)
	CodeNotFound        = "not_found"         // 404: unknown model, job or route
	CodeTimeout         = "timeout"           // 408: the request body did not arrive in time
	CodeTooLarge        = "too_large"         // 413: body over the limit
	CodeUnsupportedType = "unsupported_media" // 415: not an image
	CodeUnprocessable   = "unprocessable"     // 422: undecodable image, too many pixels
	CodeQueueFull       = "queue_full"        // 429: admission queue full (Retry-After)
	CodeUnavailable     = "unavailable"       // 503: backend down, model not ready
	CodeInternal        = "internal"          // 500
	CodeConflict        = "conflict"          // 409: state conflict (already exists, running)
	CodeUnsupported     = "unsupported"       // 501: the backend cannot do what was asked
)

// ErrorBody is the JSON body of every error response:
// {"error":{"code":"...","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and human-readable message of an error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StatusError is an error response received by the Client.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable error code.
	Code string
	// Message says what was wrong.
	Message string
	// RetryAfter is the server's Retry-After hint, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// IsStatus reports whether err is a StatusError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// StatusForCode maps an error code to its HTTP status.
func StatusForCode(code string) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeTimeout:
		return http.StatusRequestTimeout
	case CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedType:
		return http.StatusUnsupportedMediaType
	case CodeUnprocessable:
		return http.StatusUnprocessableEntity
	case CodeQueueFull:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeUnsupported:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}
