package trainer

import (
	"context"
	"time"

	pb "github.com/azaion/edge/sdk/trainer/proto"
)

// server adapts a Trainer to the gRPC service (the plugin side).
type server struct {
	pb.UnimplementedTrainerServer
	impl Trainer
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	r := &pb.InfoResponse{Name: info.Name, Version: info.Version, ApiVersions: info.APIVersions}
	for _, t := range info.JobTypes {
		r.JobTypes = append(r.JobTypes, string(t))
	}
	return r, nil
}

func (s *server) StartJob(req *pb.JobSpec, stream pb.Trainer_StartJobServer) error {
	spec := JobSpec{ID: req.Id, Type: JobType(req.Type), DataRoot: req.DataRoot, Params: req.ParamsJson,
		StateDir: req.StateDir, LogPath: req.LogPath}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// emit is called from one goroutine at a time (the Trainer contract);
	// a failed send means the daemon went away, so the job stops.
	err := s.impl.StartJob(ctx, spec, func(ev Event) {
		if ctx.Err() != nil {
			return
		}
		if err := stream.Send(eventToPB(ev)); err != nil {
			cancel()
		}
	})
	return toStatus(err)
}

func (s *server) Cancel(ctx context.Context, req *pb.CancelRequest) (*pb.CancelResponse, error) {
	if err := s.impl.Cancel(ctx, req.Id); err != nil {
		return nil, toStatus(err)
	}
	return &pb.CancelResponse{}, nil
}

func eventToPB(ev Event) *pb.JobEvent {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	return &pb.JobEvent{Progress: ev.Progress, Stage: ev.Stage, Message: ev.Message, Metrics: ev.Metrics, UnixNano: ev.Time.UnixNano()}
}

func eventFromPB(e *pb.JobEvent) Event {
	return Event{Progress: e.Progress, Stage: e.Stage, Message: e.Message, Metrics: e.Metrics, Time: time.Unix(0, e.UnixNano).UTC()}
}
