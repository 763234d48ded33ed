package trainer

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// errorCodes is how trainer errors cross the plugin boundary.
var errorCodes = sdkplugin.ErrorCodes{
	{Err: context.Canceled, Code: codes.Canceled},
	{Err: context.DeadlineExceeded, Code: codes.DeadlineExceeded},
	{Err: ErrUnknownJob, Code: codes.NotFound},
	{Err: ErrBadSpec, Code: codes.InvalidArgument},
}

// toStatus maps a job error to a gRPC status (the plugin side).
func toStatus(err error) error { return errorCodes.Status(err) }

// fromStatus maps a gRPC status back to the package's errors (the daemon side).
func fromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("trainer %s: %w", op, err)
	}
	sentinel := errorCodes.Sentinel(st.Code())
	if sentinel == nil {
		return fmt.Errorf("trainer %s: %s", op, st.Message())
	}
	return fmt.Errorf("trainer %s: %s: %w", op, st.Message(), sentinel)
}
