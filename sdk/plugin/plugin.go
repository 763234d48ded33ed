// Package plugin holds what every Azaion Edge plugin process shares with the
// daemon, whatever its kind: the go-plugin handshake, gRPC message limits,
// the mapping of errors to gRPC codes, the plugin logger, and Serve (each
// kind's configuration is in sdk/pluginconfig).
// Plugin-kind packages (sdk/backend, sdk/trainer) build on it.
package plugin

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is the go-plugin handshake every Azaion plugin and the daemon
// share. It is not a secret: it only stops a plugin binary from being run by
// hand by mistake.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "AZAION_PLUGIN_MAGIC",
	MagicCookieValue: "8f1d1c2e-azaion-edge-plugin",
}

// ExitConfig is the exit status of a plugin that cannot start because of
// its configuration (a runtime library that does not load, bad settings):
// the daemon reports the plugin's own error and retries it slowly, since a
// person has to fix it. It is EX_CONFIG of sysexits.h.
const ExitConfig = 78

// Fatal logs why a plugin cannot start and exits: with ExitConfig when
// config is true, else with status 1. Call it from a plugin's main.
func Fatal(log hclog.Logger, msg string, err error, config bool) {
	log.Error(msg, "error", err)
	if config {
		os.Exit(ExitConfig)
	}
	os.Exit(1)
}

// MaxMessageSize is the gRPC message limit on both sides (images travel in
// Detect requests; models are streamed in chunks of ChunkSize).
const MaxMessageSize = 256 << 20

// ChunkSize is the size of a streamed model chunk.
const ChunkSize = 1 << 20

// ServerOptions are the gRPC server options plugins serve with.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize)}
}

// DialOptions are the gRPC dial options the daemon connects with.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))}
}

// Serve serves the given plugins over gRPC, with ServerOptions and extra
// (a plugin kind's own, such as a codec); it returns when the daemon
// disconnects. Call it from a plugin's main.
func Serve(plugins goplugin.PluginSet, log hclog.Logger, extra ...grpc.ServerOption) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugins,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(append(opts, ServerOptions()...), extra...)...)
		},
		Logger: log,
	})
}

// NewLogger returns the JSON hclog logger plugins log with, so go-plugin
// keeps levels when it re-logs plugin output in the daemon.
func NewLogger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(envOr("AZAION_LOG_LEVEL", "info")),
		JSONFormat: true,
		Output:     os.Stderr,
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
