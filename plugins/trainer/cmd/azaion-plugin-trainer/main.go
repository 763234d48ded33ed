// Command azaion-plugin-trainer is the trainer/augmenter plugin of Azaion
// Edge, launched by the daemon over go-plugin; its logic is plugins/trainer.
package main

import (
	"github.com/azaion/edge/plugins/trainer"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	"github.com/azaion/edge/sdk/pluginconfig"
	sdk "github.com/azaion/edge/sdk/trainer"
)

func main() {
	log := sdkplugin.NewLogger("trainer")
	cfg := pluginconfig.DefaultTrainer()
	if err := pluginconfig.Decode(&cfg); err != nil {
		sdkplugin.Fatal(log, "bad configuration", err, true)
	}
	sdk.Serve(trainer.New(cfg, log), log)
}
