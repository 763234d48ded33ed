package config

// APIConfig is the Azaion REST API and the user's credentials.
// Owned by the model distribution subsystem (issue 3).
type APIConfig struct {
	// URL is the API base URL, e.g. https://api.azaion.com.
	URL string `yaml:"url"`
}

func defaultAPI() APIConfig { return APIConfig{} }

func (c *APIConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_API_URL"); ok {
		c.URL = v
	}
	return nil
}

func (c *APIConfig) validate() error { return nil }
