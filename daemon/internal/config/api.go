package config

import (
	"fmt"
	"net/url"
	"os"
	"time"
)

// APIConfig is the Azaion REST API and the user's credentials.
// Owned by the model distribution subsystem (issue 3).
type APIConfig struct {
	// URL is the API base URL, e.g. https://api.azaion.com (env
	// AZAION_API_URL). Only https is accepted.
	URL string `yaml:"url"`
	// CAFile is an optional PEM file of CA certificates trusted in addition to
	// the system roots (env AZAION_API_CA_FILE). TLS is always verified.
	CAFile string `yaml:"ca_file"`
	// Email is the user's e-mail (env AZAION_API_EMAIL).
	Email string `yaml:"email"`
	// PasswordFile is a mode-0600 file holding the password; the environment
	// variable AZAION_API_PASSWORD overrides it.
	PasswordFile string `yaml:"password_file"`
	// Password is filled from AZAION_API_PASSWORD or PasswordFile; never from YAML.
	Password Secret `yaml:"-"`
	// Timeout bounds one API call (default 60s).
	Timeout time.Duration `yaml:"timeout"`
}

func defaultAPI() APIConfig { return APIConfig{Timeout: 60 * time.Second} }

func (c *APIConfig) applyEnv(env LookupEnv) error {
	str := func(key string, dst *string) {
		if v, ok := env(key); ok {
			*dst = v
		}
	}
	str("AZAION_API_URL", &c.URL)
	str("AZAION_API_CA_FILE", &c.CAFile)
	str("AZAION_API_EMAIL", &c.Email)
	pw, err := secretFrom(env, "AZAION_API_PASSWORD", c.PasswordFile, "api.password_file")
	if err != nil {
		return err
	}
	c.Password = pw
	return nil
}

func (c *APIConfig) validate() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("config: api.url %q is not a URL", c.URL)
		}
		if u.Scheme != "https" {
			return fmt.Errorf("config: api.url %q: only https is allowed", c.URL)
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("config: api.ca_file: %w", err)
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("config: api.timeout must be positive")
	}
	return nil
}
