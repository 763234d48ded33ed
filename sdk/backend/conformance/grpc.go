package conformance

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/azaion/edge/sdk/backend"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// OverGRPC serves impl through the backend's gRPC shims on an in-memory
// connection and returns the client side, so the suite exercises the same
// code path as the daemon (proto mapping, chunked Load, error codes).
func OverGRPC(t testing.TB, impl backend.Backend) backend.Backend {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(backend.ServerOptions()...)
	if err := (&backend.GRPCPlugin{Impl: impl}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	opts := append(sdkplugin.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("passthrough:///bufconn", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return backend.NewClient(conn)
}
