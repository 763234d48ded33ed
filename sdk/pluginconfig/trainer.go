package pluginconfig

import (
	"fmt"
	"path/filepath"
)

// Trainer configures the trainer/augmenter plugin (azaion-plugin-trainer).
// It is the plugin part of the daemon's `trainer:` YAML section; the job
// defaults (validate, augment, dataset) stay on the daemon side, which
// merges them into each job's parameters.
type Trainer struct {
	// Python is the interpreter of the training worker's virtual
	// environment (`make deps` creates one under the cache); empty means
	// jobs that need the worker are refused with a message saying so.
	Python string `yaml:"python" json:"python"`
	// ONNXLibrary is the ONNX Runtime library the accuracy gate evaluates
	// ONNX artifacts with (through the ONNX backend's own code); the daemon
	// sets it from its onnx.library.
	ONNXLibrary string `yaml:"-" json:"onnx_library,omitempty"`
}

// DefaultTrainer returns the trainer plugin's defaults.
func DefaultTrainer() Trainer { return Trainer{} }

// Validate checks the configuration and returns the first problem, starting
// with the field's name.
func (c Trainer) Validate() error {
	if c.Python != "" && !filepath.IsAbs(c.Python) {
		return fmt.Errorf("python %q: want an absolute path", c.Python)
	}
	if c.ONNXLibrary != "" && !filepath.IsAbs(c.ONNXLibrary) {
		return fmt.Errorf("onnx_library %q: want an absolute path", c.ONNXLibrary)
	}
	return nil
}
