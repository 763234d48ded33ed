package trainer

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus maps a job error to a gRPC status (the plugin side).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrUnknownJob):
		code = codes.NotFound
	case errors.Is(err, ErrBadSpec):
		code = codes.InvalidArgument
	}
	return status.Error(code, err.Error())
}

// fromStatus maps a gRPC status back to the package's errors (the daemon side).
func fromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("trainer %s: %w", op, err)
	}
	var sentinel error
	switch st.Code() {
	case codes.Canceled:
		sentinel = context.Canceled
	case codes.DeadlineExceeded:
		sentinel = context.DeadlineExceeded
	case codes.NotFound:
		sentinel = ErrUnknownJob
	case codes.InvalidArgument:
		sentinel = ErrBadSpec
	default:
		return fmt.Errorf("trainer %s: %s", op, st.Message())
	}
	return fmt.Errorf("trainer %s: %s: %w", op, st.Message(), sentinel)
}
