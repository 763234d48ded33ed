package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIngestConfig(t *testing.T) {
	dir := t.TempDir()
	uriFile := filepath.Join(dir, "uri")
	if err := os.WriteFile(uriFile, []byte("rabbitmq-stream://u:filepw@mq:5552/%2f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wide := filepath.Join(dir, "wide")
	if err := os.WriteFile(wide, []byte("rabbitmq-stream://u:pw@mq:5552/"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(*IngestConfig)
		env    map[string]string
		broker string
		err    string
	}{
		{"defaults, disabled", nil, nil, "", ""},
		{"enabled without broker", func(c *IngestConfig) { c.Enabled = true }, nil, "", "ingest.enabled needs a broker"},
		{"env", func(c *IngestConfig) { c.Enabled = true }, map[string]string{"AZAION_STREAM_URI": "rabbitmq-stream://u:envpw@mq:5552/"}, "rabbitmq-stream://u:envpw@mq:5552/", ""},
		{"file", func(c *IngestConfig) { c.URIFile = uriFile }, nil, "rabbitmq-stream://u:filepw@mq:5552/%2f", ""},
		{"env beats file", func(c *IngestConfig) { c.URIFile = uriFile }, map[string]string{"AZAION_STREAM_URI": "rabbitmq-stream://mq2:5552/"}, "rabbitmq-stream://mq2:5552/", ""},
		{"wide file", func(c *IngestConfig) { c.URIFile = wide }, nil, "", "ingest.uri_file"},
		{"uri without password", func(c *IngestConfig) { c.URI = "rabbitmq-stream://u@mq:5552/" }, nil, "rabbitmq-stream://u@mq:5552/", ""},
		{"uri with password", func(c *IngestConfig) { c.URI = "rabbitmq-stream://u:pw@mq:5552/" }, nil, "", "ingest.uri contains a password"},
		{"bad scheme", func(c *IngestConfig) { c.URI = "amqp://mq:5672/" }, nil, "", "scheme \"amqp\""},
		{"stream env", nil, map[string]string{"AZAION_STREAM": "s2", "AZAION_INGEST_CONSUMER": "c2"}, "", ""},
		{"empty stream", func(c *IngestConfig) { c.Stream = "" }, nil, "", "ingest.stream"},
		{"batch 0", func(c *IngestConfig) { c.BatchMessages = 0 }, nil, "", "ingest.batch_messages"},
		{"image limit", func(c *IngestConfig) { c.MaxImageBytes = -1 }, nil, "", "ingest.max_image_bytes"},
		{"sync fsync", func(c *IngestConfig) { c.Sync = "fsync" }, nil, "", ""},
		{"sync bad", func(c *IngestConfig) { c.Sync = "sometimes" }, nil, "", "ingest.sync"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultIngest()
			if tc.edit != nil {
				tc.edit(&c)
			}
			err := c.applyEnv(env(tc.env))
			if err == nil {
				err = c.validate()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error mentioning %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Broker.Reveal() != tc.broker {
				t.Fatalf("broker %q, want %q", c.Broker.Reveal(), tc.broker)
			}
			if s := fmt.Sprintf("%v %+v", c.Broker, c); strings.Contains(s, "pw@") {
				t.Fatalf("config prints the password: %s", s)
			}
			if tc.name == "stream env" && (c.Stream != "s2" || c.Consumer != "c2") {
				t.Fatalf("stream env not applied: %+v", c)
			}
		})
	}
}
