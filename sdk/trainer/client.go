package trainer

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/azaion/edge/sdk/trainer/proto"
)

// Client is a Trainer that calls a plugin over gRPC.
type Client struct {
	c pb.TrainerClient
}

var _ Trainer = (*Client)(nil)

// NewClient returns a Trainer over an established gRPC connection.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{c: pb.NewTrainerClient(conn)}
}

// Info implements Trainer.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	r, err := c.c.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return nil, fromStatus("info", err)
	}
	info := &Info{Name: r.Name, Version: r.Version, APIVersions: r.ApiVersions}
	for _, t := range r.JobTypes {
		info.JobTypes = append(info.JobTypes, JobType(t))
	}
	return info, nil
}

// StartJob implements Trainer: it calls emit for every streamed event and
// returns the job's outcome when the stream ends.
func (c *Client) StartJob(ctx context.Context, spec JobSpec, emit func(Event)) error {
	stream, err := c.c.StartJob(ctx, &pb.JobSpec{Id: spec.ID, Type: string(spec.Type), DataRoot: spec.DataRoot, ParamsJson: spec.Params,
		StateDir: spec.StateDir, LogPath: spec.LogPath})
	if err != nil {
		return fromStatus("start job", err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fromStatus("job "+spec.ID, err)
		}
		if emit != nil {
			emit(eventFromPB(ev))
		}
	}
}

// Cancel implements Trainer.
func (c *Client) Cancel(ctx context.Context, id string) error {
	_, err := c.c.Cancel(ctx, &pb.CancelRequest{Id: id})
	return fromStatus("cancel", err)
}
