package config

// CDNConfig is the S3-compatible CDN holding the models' big parts.
// Owned by the model distribution subsystem (issue 3).
type CDNConfig struct {
	// Endpoint is the S3 endpoint URL.
	Endpoint string `yaml:"endpoint"`
}

func defaultCDN() CDNConfig { return CDNConfig{} }

func (c *CDNConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_CDN_ENDPOINT"); ok {
		c.Endpoint = v
	}
	return nil
}

func (c *CDNConfig) validate() error { return nil }
