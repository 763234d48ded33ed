package backend

import (
	"google.golang.org/grpc/codes"

	pb "github.com/azaion/edge/sdk/backend/proto"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	"github.com/azaion/edge/sdk/yolo"
)

// errorCodes is how backend errors cross the plugin boundary.
var errorCodes = sdkplugin.ErrorCodes{
	{Err: ErrUnknownHandle, Code: codes.NotFound},
	{Err: ErrBadModel, Code: codes.InvalidArgument},
	{Err: ErrUnsupported, Code: codes.FailedPrecondition},
	{Err: ErrUnavailable, Code: codes.Unavailable},
	{Err: ErrBusy, Code: codes.ResourceExhausted},
	// The code only has to be unique in this table.
	{Err: ErrBadSource, Code: codes.OutOfRange},
	{Err: ErrSharedImages, Code: codes.DataLoss},
}

// toStatus maps a backend error to a gRPC status (the plugin side).
func toStatus(err error) error { return errorCodes.Status(err) }

// fromStatus maps a gRPC status back to the package's errors (the daemon side).
func fromStatus(op string, err error) error { return errorCodes.FromStatus("backend", op, err) }

func paramsToPB(p DetectParams) *pb.DetectParams {
	out := &pb.DetectParams{Conf: p.Conf, Iou: p.IoU, MaxDet: int32(p.MaxDet), MaxPixels: p.MaxPixels}
	for _, c := range p.Classes {
		out.Classes = append(out.Classes, int32(c))
	}
	return out
}

func paramsFromPB(p *pb.DetectParams) DetectParams {
	var out DetectParams
	if p == nil {
		return out
	}
	out.Conf, out.IoU, out.MaxDet, out.MaxPixels = p.Conf, p.Iou, int(p.MaxDet), p.MaxPixels
	for _, c := range p.Classes {
		out.Classes = append(out.Classes, int(c))
	}
	return out
}

func resultToPB(r ImageResult) *pb.ImageResult {
	out := &pb.ImageResult{
		Width: int32(r.Width), Height: int32(r.Height), BatchSize: int32(r.BatchSize),
		Timings:    timingsToPB(r.Timings),
		Detections: make([]*pb.Detection, len(r.Detections)),
	}
	for i, d := range r.Detections {
		out.Detections[i] = &pb.Detection{ClassId: int32(d.ClassID), Score: d.Score, X1: d.Box.X1, Y1: d.Box.Y1, X2: d.Box.X2, Y2: d.Box.Y2}
	}
	if r.Err != nil {
		out.Error = &pb.ImageError{Code: r.Err.Code, Message: r.Err.Message}
	}
	return out
}

func resultFromPB(r *pb.ImageResult) ImageResult {
	out := ImageResult{Width: int(r.Width), Height: int(r.Height), BatchSize: int(r.BatchSize),
		Detections: make([]yolo.Detection, len(r.Detections))}
	out.Timings = timingsFromPB(r.Timings)
	for i, d := range r.Detections {
		out.Detections[i] = yolo.Detection{ClassID: int(d.ClassId), Score: d.Score,
			Box: yolo.Box{X1: d.X1, Y1: d.Y1, X2: d.X2, Y2: d.Y2}}
	}
	if r.Error != nil {
		out.Err = &ImageError{Code: r.Error.Code, Message: r.Error.Message}
	}
	return out
}
