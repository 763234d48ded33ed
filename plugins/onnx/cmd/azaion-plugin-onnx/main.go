// Command azaion-plugin-onnx is the ONNX Runtime backend plugin. The daemon
// launches it (hashicorp/go-plugin over gRPC); it is not run by hand.
package main

import (
	"os"

	"github.com/azaion/edge/plugins/onnx"
	"github.com/azaion/edge/sdk/backend"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

func main() {
	log := sdkplugin.NewLogger("onnx")
	cfg, err := onnx.ConfigFromEnv()
	if err != nil {
		log.Error("bad configuration", "error", err)
		os.Exit(1)
	}
	b, err := onnx.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		os.Exit(1)
	}
	defer b.Close()
	backend.Serve(b, log)
}
