package backend

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/azaion/edge/sdk/backend/proto"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// imageCodec is gRPC's proto codec, except that the images of a
// DetectRequest cross without the two copies the generic one makes: the
// sending side hands gRPC the caller's image bytes as they are (instead of
// copying them into a marshalled message), and the receiving side's images
// are sub-slices of the one buffer the request is assembled in (instead of
// copies out of it). The wire format is the proto one, byte for byte: either
// side may use the generic codec.
type imageCodec struct{}

var genericCodec = encoding.GetCodecV2(grpcproto.Name)

// Name is the proto codec's, so the content-subtype stays "proto".
func (imageCodec) Name() string { return grpcproto.Name }

// Marshal implements encoding.CodecV2.
func (imageCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*pb.DetectRequest)
	if !ok {
		return genericCodec.Marshal(v)
	}
	var (
		out  mem.BufferSlice
		head []byte
	)
	if req.Handle != "" {
		head = protowire.AppendTag(head, 1, protowire.BytesType)
		head = protowire.AppendString(head, req.Handle)
	}
	for _, img := range req.Images {
		head = protowire.AppendTag(head, 2, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(img)))
		if len(img) > 0 {
			out = append(out, mem.SliceBuffer(head), mem.SliceBuffer(img))
			head = nil
		}
	}
	if req.Params != nil {
		p, err := proto.MarshalOptions{Deterministic: true}.Marshal(req.Params)
		if err != nil {
			return nil, err
		}
		head = protowire.AppendTag(head, 3, protowire.BytesType)
		head = protowire.AppendBytes(head, p)
	}
	for _, sh := range req.Shared {
		head = protowire.AppendTag(head, 4, protowire.BytesType)
		head = protowire.AppendBytes(head, appendSharedImage(nil, sh))
	}
	if len(head) > 0 {
		out = append(out, mem.SliceBuffer(head))
	}
	return out, nil
}

// Unmarshal implements encoding.CodecV2.
func (imageCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*pb.DetectRequest)
	if !ok {
		return genericCodec.Unmarshal(data, v)
	}
	// One copy out of gRPC's receive buffers (which it reuses) into a
	// buffer the request owns; the images are views of it.
	return unmarshalDetectRequest(data.Materialize(), req)
}

// unmarshalDetectRequest parses a DetectRequest whose images alias b.
func unmarshalDetectRequest(b []byte, req *pb.DetectRequest) error {
	proto.Reset(req)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("detect request: %w", protowire.ParseError(n))
		}
		if !num.IsValid() {
			return fmt.Errorf("detect request: invalid field number %d", num)
		}
		b = b[n:]
		if typ != protowire.BytesType || num < 1 || num > 4 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 { // a field this version does not know
				return fmt.Errorf("detect request: field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("detect request: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case 1:
			if !utf8.Valid(v) {
				return fmt.Errorf("detect request: handle is not UTF-8")
			}
			req.Handle = string(v)
		case 2:
			req.Images = append(req.Images, v[:len(v):len(v)])
		case 3:
			if req.Params == nil {
				req.Params = &pb.DetectParams{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, req.Params); err != nil {
				return fmt.Errorf("detect request: params: %w", err)
			}
		case 4:
			sh := &pb.SharedImage{}
			if err := proto.Unmarshal(v, sh); err != nil {
				return fmt.Errorf("detect request: shared image: %w", err)
			}
			req.Shared = append(req.Shared, sh)
		}
	}
	return nil
}

// appendSharedImage appends the wire form of a SharedImage (the proto
// encoding, zero fields left out).
func appendSharedImage(b []byte, sh *pb.SharedImage) []byte {
	for i, v := range [...]uint64{uint64(sh.Index), sh.Offset, sh.Length} {
		if v != 0 {
			b = protowire.AppendTag(b, protowire.Number(i+1), protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	return b
}

// serverCodec is the server option that installs imageCodec.
func serverCodec() grpc.ServerOption { return grpc.ForceServerCodecV2(imageCodec{}) }

// ServerOptions are the gRPC server options a backend plugin serves with:
// sdk/plugin's, and the codec that keeps images from being copied.
func ServerOptions() []grpc.ServerOption {
	return append(sdkplugin.ServerOptions(), serverCodec())
}
