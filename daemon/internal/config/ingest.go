package config

import (
	"fmt"
	"net/url"
	"time"
)

// IngestConfig is the annotation stream consumer (issue 4): it reads the
// RabbitMQ stream and writes images and labels under data.root.
type IngestConfig struct {
	// Enabled runs the consumer inside the daemon (`azaion ingest` runs it
	// in the foreground regardless).
	Enabled bool `yaml:"enabled"`
	// URI is the broker without a password, e.g.
	// rabbitmq-stream://azaion@mq.example:5552/%2f. A password here is refused:
	// put the full URI in URIFile or AZAION_STREAM_URI instead.
	URI string `yaml:"uri"`
	// URIFile is a mode-0600 file holding the full broker URI with its
	// credentials (rabbitmq-stream://user:password@host:port/vhost).
	URIFile string `yaml:"uri_file"`
	// Broker is the URI in use: AZAION_STREAM_URI, else URIFile, else URI.
	// Never from YAML; it redacts itself in logs.
	Broker Secret `yaml:"-"`
	// Stream is the RabbitMQ stream name (default azaion-annotations; env AZAION_STREAM).
	Stream string `yaml:"stream"`
	// Consumer is the consumer name the broker stores the offset under
	// (default azaion-ingest; env AZAION_INGEST_CONSUMER).
	Consumer string `yaml:"consumer"`
	// MaxImageBytes is the largest image accepted; larger messages are rejected
	// (default 20 MiB).
	MaxImageBytes int `yaml:"max_image_bytes"`
	// MaxPixels is the largest image (width*height) accepted (default 100,000,000).
	MaxPixels int `yaml:"max_pixels"`
	// BatchMessages is how many messages are made durable together, with
	// one round of fsyncs and one offset store (default 256).
	BatchMessages int `yaml:"batch_messages"`
	// BatchWait is the longest a message waits for its batch to fill (default 100ms).
	BatchWait time.Duration `yaml:"batch_wait"`
	// LagInterval is how often the stream's tail is queried to report lag (default 5s).
	LagInterval time.Duration `yaml:"lag_interval"`
	// Sync is how a batch is made durable: "syncfs" (one syncfs(2) of the
	// data root's file system per phase; default) or "fsync" (every file and
	// folder fsynced, 16 at a time; for file systems shared with heavy writers).
	Sync string `yaml:"sync"`
}

func defaultIngest() IngestConfig {
	return IngestConfig{
		Stream:        "azaion-annotations",
		Consumer:      "azaion-ingest",
		MaxImageBytes: 20 << 20,
		MaxPixels:     100_000_000,
		BatchMessages: 256,
		BatchWait:     100 * time.Millisecond,
		LagInterval:   5 * time.Second,
	}
}

func (c *IngestConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_STREAM"); ok {
		c.Stream = v
	}
	if v, ok := env("AZAION_INGEST_CONSUMER"); ok {
		c.Consumer = v
	}
	if c.URI != "" {
		if u, err := url.Parse(c.URI); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return fmt.Errorf("config: ingest.uri contains a password: put the URI in ingest.uri_file (mode 0600) or AZAION_STREAM_URI")
			}
		}
	}
	s, err := secretFrom(env, "AZAION_STREAM_URI", c.URIFile, "ingest.uri_file")
	if err != nil {
		return err
	}
	if s == "" {
		s = Secret(c.URI)
	}
	c.Broker = s
	return nil
}

func (c *IngestConfig) validate() error {
	if c.Stream == "" {
		return fmt.Errorf("config: ingest.stream is empty")
	}
	if c.Consumer == "" {
		return fmt.Errorf("config: ingest.consumer is empty")
	}
	if c.MaxImageBytes <= 0 || c.MaxImageBytes > 1<<30 {
		return fmt.Errorf("config: ingest.max_image_bytes %d is out of range 1..1GiB", c.MaxImageBytes)
	}
	if c.MaxPixels <= 0 {
		return fmt.Errorf("config: ingest.max_pixels must be positive")
	}
	if c.BatchMessages < 1 || c.BatchMessages > 10_000 {
		return fmt.Errorf("config: ingest.batch_messages %d is out of range 1..10000", c.BatchMessages)
	}
	if c.BatchWait < 0 || c.BatchWait > 10*time.Second {
		return fmt.Errorf("config: ingest.batch_wait %s is out of range 0..10s", c.BatchWait)
	}
	if c.Sync != "" && c.Sync != "syncfs" && c.Sync != "fsync" {
		return fmt.Errorf("config: ingest.sync %q is not syncfs or fsync", c.Sync)
	}
	if c.LagInterval < 100*time.Millisecond {
		return fmt.Errorf("config: ingest.lag_interval %s is shorter than 100ms", c.LagInterval)
	}
	if c.Broker != "" {
		if err := CheckStreamURI(c.Broker.Reveal()); err != nil {
			return fmt.Errorf("config: ingest broker URI (AZAION_STREAM_URI, ingest.uri_file or ingest.uri): %w", err)
		}
	} else if c.Enabled {
		return fmt.Errorf("config: ingest.enabled needs a broker: set AZAION_STREAM_URI, ingest.uri_file (mode 0600) or ingest.uri")
	}
	return nil
}

// CheckStreamURI checks a RabbitMQ stream URI without echoing it (it may hold
// a password): scheme rabbitmq-stream or rabbitmq-stream+tls, and a host.
func CheckStreamURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URI")
	}
	if u.Scheme != "rabbitmq-stream" && u.Scheme != "rabbitmq-stream+tls" {
		return fmt.Errorf("scheme %q is not rabbitmq-stream or rabbitmq-stream+tls", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("no host")
	}
	return nil
}
