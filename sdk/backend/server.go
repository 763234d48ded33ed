package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	pb "github.com/azaion/edge/sdk/backend/proto"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/shmem"
)

// maxModelSize bounds a streamed model (the plugin refuses larger ones).
const maxModelSize = 8 << 30

// server adapts a Backend to the gRPC service.
type server struct {
	pb.UnimplementedBackendServer
	impl Backend
	// region is the daemon's shared image region, mapped read-only; nil
	// when this process has none (the daemon then sends bytes).
	region *shmem.Region
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.InfoResponse{Name: info.Name, Version: info.Version, ApiVersions: info.APIVersions,
		Formats: info.Formats, Providers: info.Providers}
	if s.region != nil {
		out.SharedImagesId = s.region.ID()
	}
	for _, d := range info.Devices {
		out.Devices = append(out.Devices, &pb.Device{Id: d.ID, Kind: d.Kind, Name: d.Name,
			MemoryTotal: d.MemoryTotal, MemoryFree: d.MemoryFree, Compute: d.Compute, Uuid: d.UUID})
	}
	return out, nil
}

func (s *server) Load(stream pb.Backend_LoadServer) error {
	first, err := stream.Recv()
	if err != nil {
		return toStatus(fmt.Errorf("load: receive descriptor: %w", err))
	}
	var desc model.Descriptor
	if err := json.Unmarshal(first.DescriptorJson, &desc); err != nil {
		return toStatus(fmt.Errorf("load: %w: descriptor: %v", ErrBadModel, err))
	}
	if first.TotalSize > maxModelSize {
		return toStatus(fmt.Errorf("load %s: %w: model of %d bytes is over the %d-byte limit", desc.Name, ErrBadModel, first.TotalSize, int64(maxModelSize)))
	}
	data := make([]byte, 0, first.TotalSize)
	data = append(data, first.Data...)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return toStatus(fmt.Errorf("load %s: receive: %w", desc.Name, err))
		}
		if uint64(len(data)+len(c.Data)) > first.TotalSize {
			return toStatus(fmt.Errorf("load %s: %w: more bytes than the announced %d", desc.Name, ErrBadModel, first.TotalSize))
		}
		data = append(data, c.Data...)
	}
	if uint64(len(data)) != first.TotalSize {
		return toStatus(fmt.Errorf("load %s: %w: got %d bytes, announced %d", desc.Name, ErrBadModel, len(data), first.TotalSize))
	}
	res, err := s.impl.Load(stream.Context(), desc, data)
	clear(data) // the plaintext model leaves this process's heap as soon as the backend has it
	if err != nil {
		return toStatus(err)
	}
	dj, err := json.Marshal(res.Descriptor)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.LoadResponse{Handle: res.Handle, DescriptorJson: dj, Device: res.Device,
		DeviceBytes: res.DeviceBytes, WarmupNs: int64(res.Warmup), MaxBatch: int32(res.MaxBatch)})
}

func (s *server) Detect(ctx context.Context, req *pb.DetectRequest) (*pb.DetectResponse, error) {
	images, err := s.resolveShared(req)
	if err != nil {
		return nil, toStatus(err)
	}
	res, err := s.impl.Detect(ctx, req.Handle, images, paramsFromPB(req.Params))
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.DetectResponse{Results: make([]*pb.ImageResult, len(res))}
	for i, r := range res {
		out.Results[i] = resultToPB(r)
	}
	return out, nil
}

// resolveShared puts the request's shared images in their places: views of
// the read-only mapping, not copies.
func (s *server) resolveShared(req *pb.DetectRequest) ([][]byte, error) {
	images := req.Images
	if len(req.Shared) == 0 {
		return images, nil
	}
	if s.region == nil {
		return nil, fmt.Errorf("detect: %w: this plugin has not mapped the shared image region", ErrSharedImages)
	}
	for _, sh := range req.Shared {
		if int64(sh.Index) >= int64(len(images)) || len(images[sh.Index]) != 0 {
			return nil, fmt.Errorf("detect: %w: image %d of %d is not an empty place for a shared image", ErrSharedImages, sh.Index, len(images))
		}
		b, err := s.region.Bytes(sh.Offset, sh.Length)
		if err != nil {
			return nil, fmt.Errorf("detect: %w: image %d: %v", ErrSharedImages, sh.Index, err)
		}
		images[sh.Index] = b
	}
	return images, nil
}

func (s *server) Unload(ctx context.Context, req *pb.UnloadRequest) (*pb.UnloadResponse, error) {
	return &pb.UnloadResponse{}, toStatus(s.impl.Unload(ctx, req.Handle))
}

func (s *server) Health(ctx context.Context, _ *pb.HealthRequest) (*pb.HealthResponse, error) {
	return &pb.HealthResponse{}, toStatus(s.impl.Health(ctx))
}

func (s *server) Stats(ctx context.Context, _ *pb.StatsRequest) (*pb.StatsResponse, error) {
	st, err := s.impl.Stats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.StatsResponse{Videos: int32(st.Videos)}
	for _, m := range st.Models {
		out.Models = append(out.Models, &pb.ModelStats{Handle: m.Handle, Name: m.Name, Requests: m.Requests,
			Images: m.Images, Batches: m.Batches, Errors: m.Errors, BusyNs: int64(m.Busy)})
	}
	return out, nil
}

func (s *server) DetectVideo(req *pb.DetectVideoRequest, stream pb.Backend_DetectVideoServer) error {
	handle, vr := videoRequestFromPB(req)
	err := s.impl.DetectVideo(stream.Context(), handle, vr, func(ev VideoEvent) error {
		return stream.Send(videoEventToPB(ev))
	})
	return toStatus(err)
}
