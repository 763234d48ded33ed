package plugin

import (
	"errors"

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
// codes, in order of precedence; each kind declares one and uses it on both
// sides, so the mapping lives in one place.
type ErrorCodes []ErrorCode

// Status turns err into a gRPC status error with the code of the first
// sentinel it wraps (Internal when none), keeping its message.
func (t ErrorCodes) Status(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	for _, e := range t {
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
	for _, e := range t {
		if e.Code == code {
			return e.Err
		}
	}
	return nil
}
