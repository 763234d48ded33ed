package backend

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/azaion/edge/sdk/backend/proto"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// GRPCPlugin is the go-plugin wrapper for a Backend. On the plugin side Impl
// is the backend served; on the daemon side Impl is nil and Dispense returns
// a Backend that calls the plugin over gRPC.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Backend
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the backend's gRPC service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBackendServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Backend that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

// PluginSet returns the go-plugin set under which a backend is dispensed
// (impl is nil on the daemon side).
func PluginSet(impl Backend) goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Serve serves impl as a backend plugin; call it from a plugin's main. It
// returns when the daemon disconnects.
func Serve(impl Backend, log hclog.Logger) {
	sdkplugin.Serve(PluginSet(impl), log, serverCodec())
}
