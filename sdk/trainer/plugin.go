package trainer

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	sdkplugin "github.com/azaion/edge/sdk/plugin"
	pb "github.com/azaion/edge/sdk/trainer/proto"
)

// PluginName is the go-plugin name under which a trainer is dispensed.
const PluginName = "trainer"

// GRPCPlugin is the go-plugin wrapper for a Trainer. On the plugin side Impl
// is the trainer served; on the daemon side Impl is nil and Dispense returns
// a *Client. It uses the shared handshake and message limits of sdk/plugin
// (events are small; nothing large crosses this boundary).
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Trainer
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the trainer's gRPC service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterTrainerServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Trainer that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

// PluginSet returns the go-plugin set under which a trainer is dispensed
// (impl is nil on the daemon side).
func PluginSet(impl Trainer) goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Serve serves impl as the trainer plugin; call it from the plugin's main.
// It returns when the daemon disconnects.
func Serve(impl Trainer, log hclog.Logger) {
	sdkplugin.Serve(PluginSet(impl), log)
}
