package config

// TrainerConfig configures the trainer/augmenter plugin (issue 5).
type TrainerConfig struct {
	// Enabled launches the trainer plugin.
	Enabled bool `yaml:"enabled"`
}

func defaultTrainer() TrainerConfig { return TrainerConfig{} }

func (c *TrainerConfig) applyEnv(env LookupEnv) error { return nil }

func (c *TrainerConfig) validate() error { return nil }
