// Command azaion-plugin-trainer is the trainer/augmenter plugin of Azaion
// Edge, launched by the daemon over go-plugin; its logic is plugins/trainer.
package main

import (
	"github.com/azaion/edge/plugins/trainer"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
	sdk "github.com/azaion/edge/sdk/trainer"
)

func main() {
	log := sdkplugin.NewLogger("trainer")
	sdk.Serve(trainer.New(log), log)
}
