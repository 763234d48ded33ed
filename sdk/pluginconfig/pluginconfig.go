// Package pluginconfig holds the configuration the daemon hands each plugin
// kind: one Go struct per kind (ONNX for the ONNX Runtime backend, Trainer
// for the trainer/augmenter), which the daemon embeds in its YAML
// configuration, encodes into the plugin's environment with Encode, and the
// plugin reads back with Decode. The struct is the contract: there is no
// hand-built map on the daemon side and no second environment path in a
// plugin. It may be imported by the daemon and by any plugin.
package pluginconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Env is the environment variable that carries a plugin's configuration, as JSON.
const Env = "AZAION_PLUGIN_CONFIG"

// Config is what every plugin kind's configuration struct provides.
type Config interface {
	// Validate checks the configuration and returns the first problem,
	// starting with the field's name as spelled in YAML and JSON.
	Validate() error
}

// Encode returns the environment entry ("AZAION_PLUGIN_CONFIG=<json>") that
// hands cfg to a plugin.
func Encode(cfg Config) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("plugin config: %w", err)
	}
	return Env + "=" + string(b), nil
}

// Decode reads the configuration the daemon handed this plugin into dst:
// dst keeps its values (the caller's defaults) for fields the JSON does not
// set, unknown fields are refused, and the result is validated. An unset
// variable leaves dst's defaults, validated.
func Decode(dst Config) error {
	return DecodeString(os.Getenv(Env), dst)
}

// DecodeString is Decode from a JSON string instead of the environment.
func DecodeString(s string, dst Config) error {
	if s = strings.TrimSpace(s); s != "" {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("plugin config %s: %w", Env, err)
		}
	}
	if err := dst.Validate(); err != nil {
		return fmt.Errorf("plugin config: %w", err)
	}
	return nil
}
