package trainer

import (
	"google.golang.org/grpc/codes"

	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// errorCodes is how trainer errors cross the plugin boundary.
var errorCodes = sdkplugin.ErrorCodes{
	{Err: ErrUnknownJob, Code: codes.NotFound},
	{Err: ErrBadSpec, Code: codes.InvalidArgument},
}

// toStatus maps a job error to a gRPC status (the plugin side).
func toStatus(err error) error { return errorCodes.Status(err) }

// fromStatus maps a gRPC status back to the package's errors (the daemon side).
func fromStatus(op string, err error) error { return errorCodes.FromStatus("trainer", op, err) }
