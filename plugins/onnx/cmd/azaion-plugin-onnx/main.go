// Command azaion-plugin-onnx is the ONNX Runtime backend plugin. The daemon
// launches it (hashicorp/go-plugin over gRPC); it is not run by hand.
package main

import (
	"github.com/azaion/edge/plugins/onnx"
	"github.com/azaion/edge/sdk/backend"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

func main() {
	log := sdkplugin.NewLogger("onnx")
	cfg, err := onnx.ConfigFromEnv()
	if err != nil {
		sdkplugin.Fatal(log, "bad configuration", err, true)
	}
	b, err := onnx.New(cfg, log)
	if err != nil { // the runtime library or a requested provider: configuration
		sdkplugin.Fatal(log, "cannot start", err, true)
	}
	defer b.Close()
	backend.Serve(b, log)
}
