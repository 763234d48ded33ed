// Package plugintest connects a plugin's gRPC server and a client in memory,
// for tests of the plugin kinds' shims: no socket, no process, the dial
// options the daemon connects with.
package plugintest

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// Conn serves srv (its services already registered) on an in-memory
// listener and returns a client connection to it, dialled with
// sdk/plugin.DialOptions. Both are closed when the test ends, the
// connection first.
func Conn(t testing.TB, srv *grpc.Server) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(ln) }()
	opts := append(sdkplugin.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("passthrough:///bufconn", opts...)
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return conn
}
