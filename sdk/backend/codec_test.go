package backend

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/azaion/edge/sdk/backend/proto"
)

func detectRequests() map[string]*pb.DetectRequest {
	big := bytes.Repeat([]byte{0xFF, 0xD8, 1, 2, 3}, 300_000)
	return map[string]*pb.DetectRequest{
		"empty":        {},
		"handle only":  {Handle: "yolo11n#1"},
		"one image":    {Handle: "m#2", Images: [][]byte{big}, Params: &pb.DetectParams{Conf: 0.25, Iou: 0.45, MaxDet: 300}},
		"empty images": {Handle: "m#3", Images: [][]byte{{}, []byte("x"), {}}},
		"all fields": {Handle: "m#4", Images: [][]byte{big[:1000], big[1000:5000]},
			Params: &pb.DetectParams{Conf: 0.5, Classes: []int32{0, 5, 79}, MaxPixels: 1 << 30}},
		"shared and not": {Handle: "m#5", Images: [][]byte{{}, big[:700], {}, {}},
			Params: &pb.DetectParams{Conf: 0.3},
			Shared: []*pb.SharedImage{{Index: 0, Offset: 0, Length: 1}, {Index: 2, Offset: 4096, Length: 2_200_000}, {Index: 3, Offset: 1 << 40, Length: 5}}},
	}
}

// TestImageCodecWire: the codec writes exactly the bytes proto writes and
// reads what proto writes (unknown fields skipped), so either side may use
// the generic codec.
func TestImageCodecWire(t *testing.T) {
	for name, req := range detectRequests() {
		t.Run(name, func(t *testing.T) {
			bs, err := imageCodec{}.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := bs.Materialize(); !bytes.Equal(got, want) {
				t.Fatalf("wire bytes differ from proto's (%d vs %d bytes)", len(got), len(want))
			}
			var back pb.DetectRequest
			if err := (imageCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(want)}, &back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&back, req) {
				t.Fatalf("read back %v", &back)
			}
			// A newer sender's unknown fields are skipped.
			extra := protowire.AppendTag(append([]byte(nil), want...), 9, protowire.VarintType)
			extra = protowire.AppendVarint(extra, 42)
			extra = protowire.AppendTag(extra, 10, protowire.BytesType)
			extra = protowire.AppendBytes(extra, []byte("later"))
			back.Reset()
			if err := unmarshalDetectRequest(extra, &back); err != nil || !proto.Equal(&back, req) {
				t.Fatalf("with unknown fields: %v %v", err, &back)
			}
		})
	}
	// Other messages go through the generic codec.
	resp := &pb.DetectResponse{Results: []*pb.ImageResult{{Width: 3, Height: 4}}}
	bs, err := imageCodec{}.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back pb.DetectResponse
	if err := (imageCodec{}).Unmarshal(bs, &back); err != nil || !proto.Equal(&back, resp) {
		t.Fatalf("response: %v %v", err, &back)
	}
}

// TestImageCodecNoCopy: the sender's buffers are the caller's image bytes,
// and the receiver's images are views of the one buffer they arrived in.
func TestImageCodecNoCopy(t *testing.T) {
	req := detectRequests()["all fields"]
	bs, err := imageCodec{}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range req.Images {
		found := false
		for _, b := range bs {
			if d := b.ReadOnlyData(); len(d) == len(img) && unsafe.SliceData(d) == unsafe.SliceData(img) {
				found = true
			}
		}
		if !found {
			t.Errorf("image %d was copied into the marshalled message", i)
		}
	}
	wire := bs.Materialize()
	var back pb.DetectRequest
	if err := unmarshalDetectRequest(wire, &back); err != nil {
		t.Fatal(err)
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(wire))), uintptr(unsafe.Pointer(unsafe.SliceData(wire)))+uintptr(len(wire))
	for i, img := range back.Images {
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(img))); p < lo || p >= hi || cap(img) != len(img) {
			t.Errorf("image %d is not a capped view of the received buffer", i)
		}
	}
}

// FuzzUnmarshalDetectRequest: no input makes the parser panic, and what it
// accepts proto accepts too and reads the same.
func FuzzUnmarshalDetectRequest(f *testing.F) {
	for _, req := range detectRequests() {
		b, _ := proto.Marshal(req)
		f.Add(b[:min(len(b), 2000)])
	}
	f.Add([]byte{0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got pb.DetectRequest
		if err := unmarshalDetectRequest(b, &got); err != nil {
			return
		}
		var want pb.DetectRequest
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatalf("accepted what proto refuses: %v", err)
		}
		want.ProtoReflect().SetUnknown(nil)
		if want.Params != nil {
			want.Params.ProtoReflect().SetUnknown(nil)
		}
		if got.Params != nil {
			got.Params.ProtoReflect().SetUnknown(nil)
		}
		if !proto.Equal(&got, &want) {
			t.Fatalf("read %v, proto reads %v", &got, &want)
		}
	})
}
