package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
)

// CDNConfig is the S3-compatible CDN holding the models' big parts.
// Owned by the model distribution subsystem (issue 3).
type CDNConfig struct {
	// Endpoint is the S3 endpoint URL (env AZAION_CDN_ENDPOINT); https, or
	// http on a loopback address only.
	Endpoint string `yaml:"endpoint"`
	// Region is the S3 region (env AZAION_CDN_REGION; default us-east-1).
	Region string `yaml:"region"`
	// Bucket holds the big parts (env AZAION_CDN_BUCKET; default azaion-models).
	Bucket string `yaml:"bucket"`
	// CAFile is an optional PEM file of extra trusted CA certificates (env AZAION_CDN_CA_FILE).
	CAFile string `yaml:"ca_file"`
	// ReadKeyID is the read-only access key id (env AZAION_CDN_READ_KEY_ID).
	ReadKeyID string `yaml:"read_key_id"`
	// ReadSecretFile is a mode-0600 file with the read secret key
	// (env AZAION_CDN_READ_SECRET overrides it).
	ReadSecretFile string `yaml:"read_secret_file"`
	// ReadSecret is filled from the environment or ReadSecretFile; never from YAML.
	ReadSecret Secret `yaml:"-"`
	// WriteKeyID is the access key id used to publish (env AZAION_CDN_WRITE_KEY_ID).
	WriteKeyID string `yaml:"write_key_id"`
	// WriteSecretFile is a mode-0600 file with the write secret key
	// (env AZAION_CDN_WRITE_SECRET overrides it).
	WriteSecretFile string `yaml:"write_secret_file"`
	// WriteSecret is filled from the environment or WriteSecretFile; never from YAML.
	WriteSecret Secret `yaml:"-"`
	// PartSize is the multipart upload part size in bytes (default 16 MiB).
	PartSize int64 `yaml:"part_size"`
}

func defaultCDN() CDNConfig {
	return CDNConfig{Region: "us-east-1", Bucket: "azaion-models", PartSize: 16 << 20}
}

func (c *CDNConfig) applyEnv(env LookupEnv) error {
	str := func(key string, dst *string) {
		if v, ok := env(key); ok {
			*dst = v
		}
	}
	str("AZAION_CDN_ENDPOINT", &c.Endpoint)
	str("AZAION_CDN_REGION", &c.Region)
	str("AZAION_CDN_BUCKET", &c.Bucket)
	str("AZAION_CDN_CA_FILE", &c.CAFile)
	str("AZAION_CDN_READ_KEY_ID", &c.ReadKeyID)
	str("AZAION_CDN_WRITE_KEY_ID", &c.WriteKeyID)
	var err error
	if c.ReadSecret, err = secretFrom(env, "AZAION_CDN_READ_SECRET", c.ReadSecretFile, "cdn.read_secret_file"); err != nil {
		return err
	}
	if c.WriteSecret, err = secretFrom(env, "AZAION_CDN_WRITE_SECRET", c.WriteSecretFile, "cdn.write_secret_file"); err != nil {
		return err
	}
	return nil
}

func (c *CDNConfig) validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" {
			return fmt.Errorf("config: cdn.endpoint %q is not a URL", c.Endpoint)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && isLoopback(net.JoinHostPort(u.Hostname(), "0")):
		default:
			return fmt.Errorf("config: cdn.endpoint %q: want https (plain http only on a loopback address)", c.Endpoint)
		}
		if c.Bucket == "" {
			return fmt.Errorf("config: cdn.bucket is empty")
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("config: cdn.ca_file: %w", err)
		}
	}
	if c.PartSize < 5<<20 {
		return fmt.Errorf("config: cdn.part_size %d is below the S3 minimum of 5 MiB", c.PartSize)
	}
	return nil
}
