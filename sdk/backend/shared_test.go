package backend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	pb "github.com/azaion/edge/sdk/backend/proto"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/plugin/plugintest"
	"github.com/azaion/edge/sdk/shmem"
)

// recorder is a Backend that records the images Detect gets; block, when
// set, makes Detect wait for it to close before reading them.
type recorder struct {
	mu      sync.Mutex
	got     [][]byte // copies, taken when read
	started chan struct{}
	block   chan struct{}
	region  *shmem.Region // to tell whether an image is a view of the mapping
	views   []bool
}

func (r *recorder) Info(context.Context) (*Info, error) {
	return &Info{Name: "rec", APIVersions: []string{APIVersion}}, nil
}
func (r *recorder) Load(context.Context, model.Descriptor, []byte) (*LoadResult, error) {
	return nil, ErrUnsupported
}
func (r *recorder) Detect(ctx context.Context, _ string, images [][]byte, _ DetectParams) ([]ImageResult, error) {
	if r.started != nil {
		close(r.started)
	}
	if r.block != nil {
		<-r.block // the call was cancelled meanwhile: a backend may still read
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got, r.views = nil, nil
	out := make([]ImageResult, len(images))
	for i, img := range images {
		r.got = append(r.got, bytes.Clone(img))
		inMap := false
		if r.region != nil {
			_, inMap = r.region.Offset(img)
		}
		r.views = append(r.views, inMap)
		out[i] = ImageResult{Width: len(img)}
	}
	return out, nil
}
func (r *recorder) Unload(context.Context, string) error { return nil }
func (r *recorder) Health(context.Context) error         { return nil }
func (r *recorder) Stats(context.Context) (*Stats, error) {
	return &Stats{}, nil
}
func (r *recorder) DetectVideo(context.Context, string, VideoRequest, func(VideoEvent) error) error {
	return ErrUnsupported
}

// sharedPair is a daemon-side pool and, when mapped, the plugin side's
// read-only mapping of the same memfd (as FromEnv makes it).
func sharedPair(t *testing.T, size int, mapped bool) (*shmem.Pool, *shmem.Region) {
	t.Helper()
	w, err := shmem.Create(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if !mapped {
		return shmem.NewPool(w), nil
	}
	fd, err := unix.Dup(int(w.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := shmem.Open(os.NewFile(uintptr(fd), "dup"), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return shmem.NewPool(w), ro
}

// serveShared serves impl over gRPC (as sdk/backend.Serve does, on an
// in-memory connection) with region as the plugin's mapping, and returns a
// client with pool after its Info handshake.
func serveShared(t *testing.T, impl Backend, region *shmem.Region, pool *shmem.Pool) *Client {
	t.Helper()
	srv := grpc.NewServer(ServerOptions()...)
	p := &GRPCPlugin{Impl: impl, Region: region}
	if err := p.GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	conn := plugintest.Conn(t, srv)
	raw, err := (&GRPCPlugin{Shared: pool}).GRPCClient(context.Background(), nil, conn)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*Client)
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func fill(b []byte, seed byte) []byte {
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestSharedImagesMixed: images in the region cross as references and reach
// the backend as views of its read-only mapping, the others as bytes, all
// in their order.
func TestSharedImagesMixed(t *testing.T) {
	pool, ro := sharedPair(t, 1<<20, true)
	rec := &recorder{region: ro}
	c := serveShared(t, rec, ro, pool)
	if !c.SharesImages() {
		t.Fatal("a plugin that mapped the region does not get references")
	}
	a := fill(pool.Alloc(300_000), 1)
	b := fill(make([]byte, 1000), 2)
	d := fill(pool.Alloc(5), 3)
	images := [][]byte{a, b, d, fill(make([]byte, 7), 4)}
	res, err := c.Detect(context.Background(), "h", images, DetectParams{})
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range images {
		if !bytes.Equal(rec.got[i], img) || res[i].Width != len(img) {
			t.Fatalf("image %d: the backend got %d bytes, want %d (in order)", i, len(rec.got[i]), len(img))
		}
	}
	if want := []bool{true, false, true, false}; !equalBools(rec.views, want) {
		t.Fatalf("views of the mapping: %v, want %v", rec.views, want)
	}
	if pool.Shared.Load() != 2 || pool.Copied.Load() != 2 {
		t.Fatalf("counters shared %d copied %d, want 2 and 2", pool.Shared.Load(), pool.Copied.Load())
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSharedImagesUnmapped: a plugin without the mapping (or with another
// region) reports no or another ID and gets bytes; one that refuses
// references anyway makes the client fall back to bytes.
func TestSharedImagesUnmapped(t *testing.T) {
	t.Run("no mapping", func(t *testing.T) {
		pool, _ := sharedPair(t, 1<<16, false)
		rec := &recorder{}
		c := serveShared(t, rec, nil, pool)
		if c.SharesImages() {
			t.Fatal("a plugin without the mapping would get references")
		}
		img := fill(pool.Alloc(100), 5)
		if _, err := c.Detect(context.Background(), "h", [][]byte{img}, DetectParams{}); err != nil || !bytes.Equal(rec.got[0], img) {
			t.Fatalf("%v, backend got %d bytes", err, len(rec.got[0]))
		}
		if pool.Shared.Load() != 0 || pool.Copied.Load() != 1 {
			t.Fatalf("shared %d copied %d", pool.Shared.Load(), pool.Copied.Load())
		}
	})
	t.Run("another region", func(t *testing.T) {
		pool, _ := sharedPair(t, 1<<16, false)
		_, other := sharedPair(t, 1<<16, true)
		c := serveShared(t, &recorder{}, other, pool)
		if c.SharesImages() {
			t.Fatal("a plugin that mapped another region would get references")
		}
	})
	t.Run("refused", func(t *testing.T) {
		pool, ro := sharedPair(t, 1<<16, true)
		rec := &recorder{}
		srv := grpc.NewServer(ServerOptions()...)
		s := &server{impl: rec, region: ro}
		pb.RegisterBackendServer(srv, s)
		c := NewSharedClient(plugintest.Conn(t, srv), pool)
		if _, err := c.Info(context.Background()); err != nil || !c.SharesImages() {
			t.Fatalf("handshake: %v", err)
		}
		s.region = nil // the plugin lost its mapping after it reported it
		img := fill(pool.Alloc(100), 6)
		if _, err := c.Detect(context.Background(), "h", [][]byte{img}, DetectParams{}); err != nil || !bytes.Equal(rec.got[0], img) {
			t.Fatalf("after a refusal: %v", err)
		}
		if c.SharesImages() || pool.Copied.Load() != 1 {
			t.Fatal("the client did not fall back to bytes after a refusal")
		}
		// The server refuses bad references with ErrSharedImages.
		s.region = ro
		for _, req := range []struct {
			images [][]byte
			idx    uint32
			off, n uint64
		}{{[][]byte{nil}, 1, 0, 10}, {[][]byte{[]byte("x")}, 0, 0, 10}, {[][]byte{nil}, 0, 1 << 16, 1}, {[][]byte{nil}, 0, 0, 0}} {
			_, err := s.resolveShared(sharedReq(req.images, req.idx, req.off, req.n))
			if !errors.Is(err, ErrSharedImages) {
				t.Errorf("reference %+v: %v, want ErrSharedImages", req, err)
			}
		}
	})
}

// TestSharedImagesCancelHolds: a call cancelled while the backend has not
// yet read its image leaves the image's slot held: freed by its owner and
// the whole pool allocated and overwritten after, the backend still reads
// the original bytes. (Without the hold the slot would be reused at once.)
func TestSharedImagesCancelHolds(t *testing.T) {
	pool, ro := sharedPair(t, 1<<16, true)
	rec := &recorder{region: ro, started: make(chan struct{}), block: make(chan struct{})}
	c := serveShared(t, rec, ro, pool)
	img := fill(pool.Alloc(10_000), 9)
	want := bytes.Clone(img)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Detect(ctx, "h", [][]byte{img}, DetectParams{})
		errc <- err
	}()
	<-rec.started
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	pool.Free(img) // what the request handler does when Detect returns
	for {
		b := pool.Alloc(64)
		if b == nil {
			break
		}
		for i := range b {
			b[i] = 0xFF
		}
	}
	close(rec.block)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		got := rec.got
		rec.mu.Unlock()
		if got != nil {
			if !bytes.Equal(got[0], want) {
				t.Fatal("the backend read an image whose slot was reused after the call was cancelled")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend never read the image")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sharedReq(images [][]byte, idx uint32, off, n uint64) *pb.DetectRequest {
	return &pb.DetectRequest{Images: images, Shared: []*pb.SharedImage{{Index: idx, Offset: off, Length: n}}}
}
