package backend

import (
	"context"
	"errors"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/azaion/edge/sdk/backend/proto"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	"github.com/azaion/edge/sdk/shmem"
)

// GRPCPlugin is the go-plugin wrapper for a Backend. On the plugin side Impl
// is the backend served; on the daemon side Impl is nil and Dispense returns
// a Backend that calls the plugin over gRPC.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Backend
	// Region (plugin side) is the daemon's shared image region mapped
	// read-only, nil when the plugin has none.
	Region *shmem.Region
	// Shared (daemon side) is the pool whose images the client sends to a
	// plugin that mapped its region as references; nil sends bytes.
	Shared *shmem.Pool
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the backend's gRPC service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBackendServer(s, &server{impl: p.Impl, region: p.Region})
	return nil
}

// GRPCClient returns a Backend that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewSharedClient(c, p.Shared), nil
}

// PluginSet returns the go-plugin set under which a backend is dispensed
// (impl is nil on the daemon side).
func PluginSet(impl Backend) goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// ClientPluginSet is PluginSet on the daemon side with the pool of shared
// images (nil for none).
func ClientPluginSet(shared *shmem.Pool) goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{Shared: shared}}
}

// Serve serves impl as a backend plugin; call it from a plugin's main. It
// maps the daemon's shared image region read-only when the daemon passed
// one (sdk/shmem.FromEnv), so images can arrive as references to it. It
// returns when the daemon disconnects.
func Serve(impl Backend, log hclog.Logger) {
	region, err := shmem.FromEnv()
	if err != nil && !errors.Is(err, shmem.ErrNoRegion) {
		log.Warn("shared image region not mapped; images arrive as bytes", "error", err)
	}
	sdkplugin.Serve(goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl, Region: region}}, log, serverCodec())
}
