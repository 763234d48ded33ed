package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	pb "github.com/azaion/edge/sdk/backend/proto"
	"github.com/azaion/edge/sdk/model"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	"github.com/azaion/edge/sdk/shmem"
)

// Client is a Backend that calls a plugin over gRPC.
type Client struct {
	c pb.BackendClient
	// shared is the daemon's pool of shared images (nil: none); useShared
	// is set once the plugin has reported (Info) that it mapped its region.
	shared    *shmem.Pool
	useShared atomic.Bool
	// Hold is how long an image sent by reference stays untouched after a
	// call that failed or was cancelled (the plugin may still read it);
	// default shmem.DefaultHold.
	Hold time.Duration
}

var _ Backend = (*Client)(nil)

// NewClient returns a Backend over an established gRPC connection.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{c: pb.NewBackendClient(conn), Hold: shmem.DefaultHold}
}

// NewSharedClient is NewClient with the pool of shared images: once Info
// has shown that the plugin mapped the pool's region, Detect sends the
// images that lie in it as references (offset, length) instead of bytes.
func NewSharedClient(conn grpc.ClientConnInterface, shared *shmem.Pool) *Client {
	c := NewClient(conn)
	c.shared = shared
	return c
}

// SharesImages reports whether Detect sends images in the shared region by
// reference (the plugin reported the region's ID in Info).
func (c *Client) SharesImages() bool { return c.useShared.Load() }

// Info implements Backend.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	r, err := c.c.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return nil, fromStatus("info", err)
	}
	info := &Info{Name: r.Name, Version: r.Version, APIVersions: r.ApiVersions, Formats: r.Formats, Providers: r.Providers,
		SharedImagesID: r.SharedImagesId}
	c.useShared.Store(c.shared != nil && r.SharedImagesId != "" && r.SharedImagesId == c.shared.Region().ID())
	for _, d := range r.Devices {
		info.Devices = append(info.Devices, Device{ID: d.Id, Kind: d.Kind, Name: d.Name,
			MemoryTotal: d.MemoryTotal, MemoryFree: d.MemoryFree, Compute: d.Compute, UUID: d.Uuid})
	}
	return info, nil
}

// Load implements Backend: the descriptor travels in the first message, the
// model bytes follow in chunks of sdk/plugin.ChunkSize.
func (c *Client) Load(ctx context.Context, desc model.Descriptor, data []byte) (*LoadResult, error) {
	dj, err := json.Marshal(desc)
	if err != nil {
		return nil, err
	}
	stream, err := c.c.Load(ctx)
	if err != nil {
		return nil, fromStatus("load", err)
	}
	first := &pb.LoadChunk{DescriptorJson: dj, TotalSize: uint64(len(data))}
	for off := 0; ; {
		end := min(off+sdkplugin.ChunkSize, len(data))
		msg := first
		if msg == nil {
			msg = &pb.LoadChunk{}
		}
		msg.Data = data[off:end]
		first = nil
		if err := stream.Send(msg); err != nil {
			// The server ended the stream: its status says why.
			_, rerr := stream.CloseAndRecv()
			if rerr != nil {
				return nil, fromStatus("load", rerr)
			}
			return nil, fromStatus("load", err)
		}
		off = end
		if off >= len(data) {
			break
		}
	}
	r, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fromStatus("load", err)
	}
	res := &LoadResult{Handle: r.Handle, Device: r.Device, DeviceBytes: r.DeviceBytes,
		Warmup: time.Duration(r.WarmupNs), MaxBatch: int(r.MaxBatch)}
	if err := json.Unmarshal(r.DescriptorJson, &res.Descriptor); err != nil {
		return nil, fmt.Errorf("backend load: resolved descriptor: %w", err)
	}
	return res, nil
}

// Detect implements Backend. Images in the shared region go as references
// when the plugin mapped it; after a failed call they stay held (Hold),
// since the plugin may still be reading them. A plugin that refuses the
// references (ErrSharedImages) gets bytes from then on.
func (c *Client) Detect(ctx context.Context, handle string, images [][]byte, p DetectParams) ([]ImageResult, error) {
	req := &pb.DetectRequest{Handle: handle, Images: images, Params: paramsToPB(p)}
	var sent [][]byte // the images sent by reference
	if c.useShared.Load() {
		region := c.shared.Region()
		req.Images = make([][]byte, len(images))
		for i, img := range images {
			if off, ok := region.Offset(img); ok {
				req.Shared = append(req.Shared, &pb.SharedImage{Index: uint32(i), Offset: uint64(off), Length: uint64(len(img))})
				sent = append(sent, img)
				continue
			}
			req.Images[i] = img
		}
	}
	// imageCodec hands gRPC the images as they are, without a copy.
	r, err := c.c.Detect(ctx, req, grpc.ForceCodecV2(imageCodec{}))
	if err != nil {
		for _, img := range sent {
			c.shared.Hold(img, c.Hold)
		}
		err = fromStatus("detect", err)
		if len(sent) > 0 && errors.Is(err, ErrSharedImages) && ctx.Err() == nil {
			c.useShared.Store(false)
			return c.Detect(ctx, handle, images, p)
		}
		return nil, err
	}
	if c.shared != nil {
		c.shared.Shared.Add(uint64(len(sent)))
		c.shared.Copied.Add(uint64(len(images) - len(sent)))
	}
	if len(r.Results) != len(images) {
		return nil, fmt.Errorf("backend detect: %d results for %d images", len(r.Results), len(images))
	}
	out := make([]ImageResult, len(r.Results))
	for i, ir := range r.Results {
		out[i] = resultFromPB(ir)
	}
	return out, nil
}

// Unload implements Backend.
func (c *Client) Unload(ctx context.Context, handle string) error {
	_, err := c.c.Unload(ctx, &pb.UnloadRequest{Handle: handle})
	return fromStatus("unload", err)
}

// Health implements Backend.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.c.Health(ctx, &pb.HealthRequest{})
	return fromStatus("health", err)
}

// Stats implements Backend.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	r, err := c.c.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		return nil, fromStatus("stats", err)
	}
	st := &Stats{Videos: int(r.Videos)}
	for _, m := range r.Models {
		st.Models = append(st.Models, ModelStats{Handle: m.Handle, Name: m.Name, Requests: m.Requests,
			Images: m.Images, Batches: m.Batches, Errors: m.Errors, Busy: time.Duration(m.BusyNs)})
	}
	return st, nil
}

// DetectVideo implements Backend: it reads the plugin's event stream and
// hands each event to emit. An emit error cancels the call.
func (c *Client) DetectVideo(ctx context.Context, handle string, req VideoRequest, emit func(VideoEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.DetectVideo(ctx, videoRequestToPB(handle, req))
	if err != nil {
		return fromStatus("detect video", err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fromStatus("detect video", err)
		}
		if err := emit(videoEventFromPB(ev)); err != nil {
			return err
		}
	}
}
