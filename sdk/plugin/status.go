package plugin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorCode pairs a sentinel error with the gRPC code it crosses the process
// boundary as.
type ErrorCode struct {
	Err  error
	Code codes.Code
}

// ErrorCodes is a plugin kind's mapping between its sentinel errors and gRPC
// codes, in order of precedence. Each kind declares one table and both sides
// use it through Status (plugin side) and FromStatus (daemon side), so the
// mapping lives in one place; cancellation and deadlines are mapped for
// every kind.
type ErrorCodes []ErrorCode

// common are the codes every plugin kind shares, after its own.
var common = ErrorCodes{
	{Err: context.Canceled, Code: codes.Canceled},
	{Err: context.DeadlineExceeded, Code: codes.DeadlineExceeded},
}

// Status turns err into a gRPC status error with the code of the first
// sentinel it wraps (Internal when none), keeping its message.
func (t ErrorCodes) Status(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	for _, e := range append(t[:len(t):len(t)], common...) {
		if errors.Is(err, e.Err) {
			code = e.Code
			break
		}
	}
	return status.Error(code, err.Error())
}

// Sentinel returns the sentinel error for a gRPC code, or nil when the code
// maps to none.
func (t ErrorCodes) Sentinel(code codes.Code) error {
	for _, e := range append(t[:len(t):len(t)], common...) {
		if e.Code == code {
			return e.Err
		}
	}
	return nil
}

// FromStatus turns an error of a call to a plugin back into the sentinel its
// gRPC code maps to: the result's message is the plugin's own and errors.Is
// matches the sentinel. kind and op ("backend", "load") prefix errors that
// carry no known code.
func (t ErrorCodes) FromStatus(kind, op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s %s: %w", kind, op, err)
	}
	sentinel := t.Sentinel(st.Code())
	if sentinel == nil {
		return fmt.Errorf("%s %s: %s", kind, op, st.Message())
	}
	return &RemoteError{Sentinel: sentinel, Message: st.Message()}
}

// RemoteError is an error that came from a plugin: its message is the
// plugin's, and errors.Is matches the sentinel its code maps to.
type RemoteError struct {
	Sentinel error
	Message  string
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *RemoteError) Unwrap() error { return e.Sentinel }
