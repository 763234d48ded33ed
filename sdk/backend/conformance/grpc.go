package conformance

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/plugin/plugintest"
	"github.com/azaion/edge/sdk/shmem"
)

// OverGRPC serves impl through the backend's gRPC shims on an in-memory
// connection and returns the client side, so the suite exercises the same
// code path as the daemon (proto mapping, chunked Load, error codes). As in
// the daemon, the server maps a shared image region read-only (sdk/shmem)
// and the client sends the images it finds there by reference: the
// returned backend puts the images at even positions of each Detect call
// in that region and leaves the others on the heap, so both paths, and
// requests mixing them, run through the whole suite.
func OverGRPC(t testing.TB, impl backend.Backend) backend.Backend {
	t.Helper()
	region, err := shmem.Create(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(region.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := shmem.Open(os.NewFile(uintptr(fd), "shared-images"), region.Size())
	if err != nil {
		t.Fatal(err)
	}
	pool := shmem.NewPool(region)
	srv := grpc.NewServer(backend.ServerOptions()...)
	if err := (&backend.GRPCPlugin{Impl: impl, Region: ro}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	conn := plugintest.Conn(t, srv)
	t.Cleanup(func() {
		// The mappings stay: a cancelled call's image may still be read.
		if pool.Shared.Load() == 0 && pool.Copied.Load() > 0 {
			t.Error("no image went to the backend by reference")
		}
	})
	c := backend.NewSharedClient(conn, pool)
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !c.SharesImages() {
		t.Fatal("the gRPC client does not send shared images to a server that mapped them")
	}
	return &sharedImages{Client: c, pool: pool}
}

// sharedImages is a client that puts every other image of a Detect call in
// the shared region, as the daemon puts raw request bodies there.
type sharedImages struct {
	*backend.Client
	pool *shmem.Pool
}

// Detect implements backend.Backend.
func (s *sharedImages) Detect(ctx context.Context, handle string, images [][]byte, p backend.DetectParams) ([]backend.ImageResult, error) {
	in := make([][]byte, len(images))
	for i, img := range images {
		in[i] = img
		if i%2 == 0 {
			if slot := s.pool.Alloc(len(img)); slot != nil {
				copy(slot, img)
				in[i] = slot
				defer s.pool.Free(slot)
			}
		}
	}
	return s.Client.Detect(ctx, handle, in, p)
}
