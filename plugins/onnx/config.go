package onnx

import (
	"github.com/azaion/edge/sdk/pluginconfig"
)

// Config configures the ONNX Runtime backend: the sdk contract the daemon
// fills from its `onnx:` YAML section and hands over in the plugin's
// environment (sdk/pluginconfig).
type Config = pluginconfig.ONNX

// Execution providers.
const (
	ProviderCPU      = pluginconfig.ProviderCPU
	ProviderCUDA     = pluginconfig.ProviderCUDA
	ProviderTensorRT = pluginconfig.ProviderTensorRT
)

// ConfigFromEnv reads the configuration the daemon handed this plugin
// (defaults for what it leaves out), resolves the automatic values and
// validates it.
func ConfigFromEnv() (Config, error) {
	c := pluginconfig.DefaultONNX()
	if err := pluginconfig.Decode(&c); err != nil {
		return Config{}, err
	}
	return c.WithDefaults(), nil
}
