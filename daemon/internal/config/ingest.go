package config

// IngestConfig is the annotation stream consumer (issue 4).
type IngestConfig struct {
	// Enabled runs the consumer inside the daemon.
	Enabled bool `yaml:"enabled"`
	// Stream is the RabbitMQ stream name (default azaion-annotations).
	Stream string `yaml:"stream"`
}

func defaultIngest() IngestConfig { return IngestConfig{Stream: "azaion-annotations"} }

func (c *IngestConfig) applyEnv(env LookupEnv) error { return nil }

func (c *IngestConfig) validate() error { return nil }
