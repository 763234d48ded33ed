// Package config loads and validates the daemon's YAML configuration
// (/etc/azaion/azaion.yaml by default) and applies AZAION_* environment
// overrides. It is imported only by the daemon. Every environment knob the
// daemon reads is named here, so there is one place to look.
//
// Each subsystem owns one section (a struct in its own file of this package)
// with its defaults, its environment overrides and its validation; errors name
// the field that is wrong, as it is spelled in the YAML file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/sdk/pluginconfig"
)

// DefaultPath is where the packaged daemon reads its configuration.
const DefaultPath = "/etc/azaion/azaion.yaml"

// Config is the whole daemon configuration.
type Config struct {
	// HTTP is the loopback (or explicitly exposed) TCP listener.
	HTTP HTTPConfig `yaml:"http"`
	// Socket is the Unix socket listener.
	Socket SocketConfig `yaml:"socket"`
	// Paths are the folders the daemon reads and writes.
	Paths PathsConfig `yaml:"paths"`
	// Limits bound what one request may cost.
	Limits LimitsConfig `yaml:"limits"`
	// Models says how long models stay loaded and how long a load may take.
	Models ModelsConfig `yaml:"models"`
	// ONNX configures the ONNX Runtime backend plugin.
	ONNX ONNXConfig `yaml:"onnx"`
	// Log configures the daemon's logging.
	Log LogConfig `yaml:"log"`
	// API is the Azaion REST API (model small parts, login).
	API APIConfig `yaml:"api"`
	// CDN is the S3-compatible CDN (model big parts).
	CDN CDNConfig `yaml:"cdn"`
	// Data is the trainer's and the ingest's data root.
	Data DataConfig `yaml:"data"`
	// Ingest is the annotation stream consumer.
	Ingest IngestConfig `yaml:"ingest"`
	// Trainer configures the trainer/augmenter plugin.
	Trainer TrainerConfig `yaml:"trainer"`
	// Video bounds video detection and keeps its annotated outputs.
	Video VideoConfig `yaml:"video"`
	// Streams configures the live stream sessions.
	Streams StreamsConfig `yaml:"streams"`
}

// HTTPConfig is the TCP listener.
type HTTPConfig struct {
	// Addr is host:port; empty disables TCP. Default 127.0.0.1:8470.
	Addr string `yaml:"addr"`
	// TokenFile is a 0600 file holding the bearer token required when Addr is
	// not a loopback address (env AZAION_HTTP_TOKEN overrides it).
	TokenFile string `yaml:"token_file"`
	// Token is filled from AZAION_HTTP_TOKEN or TokenFile; never from YAML.
	Token Secret `yaml:"-"`
	// AllowedHosts are more Host names TCP requests may carry besides
	// loopback addresses, localhost and the listen address (DNS rebinding
	// protection: requests naming any other host are refused).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowedOrigins are web origins (scheme://host[:port]) whose browser
	// requests are served; by default every cross-origin request is refused.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// SocketConfig is the Unix socket listener.
type SocketConfig struct {
	// Path of the socket; empty disables it. Default /run/azaion/azaion.sock.
	Path string `yaml:"path"`
	// Mode is the octal file mode, default 0660.
	Mode FileMode `yaml:"mode"`
	// Group owns the socket when it exists on the machine (default azaion).
	Group string `yaml:"group"`
}

// PathsConfig are the daemon's folders.
type PathsConfig struct {
	// Models is the folder of plain local models served at start.
	Models string `yaml:"models"`
	// State holds the model store and other daemon state.
	State string `yaml:"state"`
	// Plugins is where azaion-plugin-* binaries are found.
	Plugins string `yaml:"plugins"`
}

// LimitsConfig bounds requests.
type LimitsConfig struct {
	// MaxBodyBytes is the largest request body accepted (413 above).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxPixels is the largest decoded image (width*height) accepted (422 above).
	MaxPixels int64 `yaml:"max_pixels"`
	// QueueSize is how many requests may wait per model before 429.
	QueueSize int `yaml:"queue_size"`
	// MaxQueueWait refuses at once (429 with Retry-After) a request whose
	// expected wait in its model's queue is longer (0 disables; default 1s).
	MaxQueueWait time.Duration `yaml:"max_queue_wait"`
	// RequestTimeout bounds one detection request end to end.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// BodyTimeout bounds how long a request body may take to arrive (408 after).
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// MaxUploads bounds the detection requests receiving their bodies at
	// once (429 beyond), so slow uploads cannot pin memory.
	MaxUploads int `yaml:"max_uploads"`
	// PluginStartTimeout bounds a plugin's launch and handshake; a plugin
	// that takes longer is killed and relaunched (models.load_timeout bounds
	// each model's load).
	PluginStartTimeout time.Duration `yaml:"plugin_start_timeout"`
	// StuckTimeout kills and relaunches a plugin whose detections in
	// flight make no progress for this long (0 disables).
	StuckTimeout time.Duration `yaml:"stuck_timeout"`
	// SharedImages is the size in bytes of the memory the daemon shares
	// with its detection plugins: raw image bodies are read into it and the
	// plugins read them there, with no copy over the plugin connection; a
	// body that finds it full goes the usual way (0 disables).
	SharedImages int64 `yaml:"shared_images"`
}

// ModelsConfig is the loading policy of every backend's models.
type ModelsConfig struct {
	// KeepAlive unloads a model unused for longer (0 = never; default 0).
	KeepAlive time.Duration `yaml:"keep_alive"`
	// LoadTimeout bounds one model load, and how long a request waits for
	// its unloaded model to load (default 2m).
	LoadTimeout time.Duration `yaml:"load_timeout"`
}

// ONNXConfig configures the ONNX Runtime backend: whether it runs, and the
// plugin's own configuration (sdk/pluginconfig.ONNX, handed to the plugin
// as is; env AZAION_ORT_LIB sets library, AZAION_ONNX_THREADS intra_op_threads).
type ONNXConfig struct {
	// Enabled launches the plugin (default true).
	Enabled *bool `yaml:"enabled"`
	// MaxLoadedModels is how many models the backend holds loaded at once
	// (0 = no limit); beyond it the least recently used idle one is unloaded.
	MaxLoadedModels int `yaml:"max_loaded_models"`
	// MaxLoadedBytes bounds the memory of the loaded models (0 = no limit).
	MaxLoadedBytes int64 `yaml:"max_loaded_bytes"`
	// ONNX is the plugin's configuration.
	pluginconfig.ONNX `yaml:",inline"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error (env AZAION_LOG_LEVEL).
	Level string `yaml:"level"`
	// Format is text or json; empty picks json when stderr is not a TTY.
	Format string `yaml:"format"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	enabled := true
	c := Config{
		HTTP:   HTTPConfig{Addr: "127.0.0.1:8470"},
		Socket: SocketConfig{Path: "/run/azaion/azaion.sock", Mode: 0o660, Group: "azaion"},
		Paths: PathsConfig{
			Models:  "/var/lib/azaion/models-local",
			State:   "/var/lib/azaion",
			Plugins: "/usr/lib/azaion/plugins",
		},
		Limits: LimitsConfig{
			MaxBodyBytes:       64 << 20,
			MaxPixels:          100_000_000,
			QueueSize:          64,
			MaxQueueWait:       time.Second,
			RequestTimeout:     60 * time.Second,
			BodyTimeout:        30 * time.Second,
			MaxUploads:         8,
			PluginStartTimeout: 5 * time.Minute,
			StuckTimeout:       time.Minute,
			SharedImages:       64 << 20,
		},
		Models: ModelsConfig{LoadTimeout: 2 * time.Minute},
		ONNX:   ONNXConfig{Enabled: &enabled, ONNX: pluginconfig.DefaultONNX()},
		Log:    LogConfig{Level: "info"},
	}
	c.API = defaultAPI()
	c.CDN = defaultCDN()
	c.Data = defaultData()
	c.Ingest = defaultIngest()
	c.Trainer = defaultTrainer()
	c.Video = defaultVideo()
	c.Streams = defaultStreams()
	return c
}

// Load reads the YAML file at path (if path is empty, only defaults and the
// environment apply), then applies AZAION_* overrides and validates.
// A missing file at DefaultPath is not an error; a missing explicit path is.
func Load(path string, explicit bool) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := decodeStrict(b, &c); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
		case errors.Is(err, os.ErrNotExist) && !explicit:
		default:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if err := c.applyEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeStrict(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// LookupEnv is the signature of os.LookupEnv, so tests can pass their own.
type LookupEnv func(string) (string, bool)

func (c *Config) applyEnv(env LookupEnv) error {
	str := func(key string, dst *string) {
		if v, ok := env(key); ok {
			*dst = v
		}
	}
	str("AZAION_HTTP_ADDR", &c.HTTP.Addr)
	str("AZAION_SOCKET", &c.Socket.Path)
	str("AZAION_MODELS_DIR", &c.Paths.Models)
	str("AZAION_STATE_DIR", &c.Paths.State)
	str("AZAION_PLUGIN_DIR", &c.Paths.Plugins)
	str("AZAION_ORT_LIB", &c.ONNX.Library)
	str("AZAION_LOG_LEVEL", &c.Log.Level)
	str("AZAION_LOG_FORMAT", &c.Log.Format)
	if v, ok := env("AZAION_ONNX_THREADS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("config: AZAION_ONNX_THREADS: %q is not a number", v)
		}
		c.ONNX.IntraOpThreads = n
	}
	if v, ok := env("AZAION_HTTP_TOKEN"); ok {
		c.HTTP.Token = Secret(v)
	} else if c.HTTP.TokenFile != "" {
		s, err := ReadSecretFile(c.HTTP.TokenFile)
		if err != nil {
			return fmt.Errorf("config: http.token_file: %w", err)
		}
		c.HTTP.Token = s
	}
	for _, f := range []func(LookupEnv) error{c.API.applyEnv, c.CDN.applyEnv, c.Data.applyEnv, c.Ingest.applyEnv, c.Trainer.applyEnv, c.Video.applyEnv, c.Streams.applyEnv} {
		if err := f(env); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks every field and returns an error naming the first bad one.
func (c *Config) Validate() error {
	if c.HTTP.Addr == "" && c.Socket.Path == "" {
		return errors.New("config: http.addr and socket.path are both empty: nothing to listen on")
	}
	if c.HTTP.Addr != "" && !isLoopback(c.HTTP.Addr) && c.HTTP.Token == "" {
		return fmt.Errorf("config: http.addr %q is not loopback: set http.token_file (mode 0600) or AZAION_HTTP_TOKEN", c.HTTP.Addr)
	}
	if c.Socket.Mode&^0o777 != 0 {
		return fmt.Errorf("config: socket.mode %o is not a file mode", c.Socket.Mode)
	}
	for _, check := range []struct {
		bad bool
		msg string
	}{
		{c.Paths.State == "", "paths.state is empty"},
		{c.Limits.MaxBodyBytes <= 0, "limits.max_body_bytes must be positive"},
		{c.Limits.MaxPixels <= 0, "limits.max_pixels must be positive"},
		{c.Limits.QueueSize <= 0, "limits.queue_size must be positive"},
		{c.Limits.MaxQueueWait < 0, "limits.max_queue_wait must not be negative"},
		{c.Models.KeepAlive < 0, "models.keep_alive must not be negative"},
		{c.Models.LoadTimeout <= 0, "models.load_timeout must be positive"},
		{c.ONNX.MaxLoadedModels < 0, "onnx.max_loaded_models must not be negative"},
		{c.ONNX.MaxLoadedBytes < 0, "onnx.max_loaded_bytes must not be negative"},
		{c.Limits.PluginStartTimeout <= 0, "limits.plugin_start_timeout must be positive"},
		{c.Limits.StuckTimeout < 0, "limits.stuck_timeout must not be negative"},
		{c.Limits.BodyTimeout <= 0, "limits.body_timeout must be positive"},
		{c.Limits.MaxUploads <= 0, "limits.max_uploads must be positive"},
		{c.Limits.RequestTimeout <= 0, "limits.request_timeout must be positive"},
		{c.Limits.SharedImages < 0 || c.Limits.SharedImages > 16<<30, "limits.shared_images must be from 0 to 17179869184 (16 GiB)"},
	} {
		if check.bad {
			return errors.New("config: " + check.msg)
		}
	}
	if err := c.ONNX.Validate(); err != nil {
		return fmt.Errorf("config: onnx.%w", err)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return fmt.Errorf("config: log.format %q is not text or json", c.Log.Format)
	}
	for _, f := range []func() error{c.API.validate, c.CDN.validate, c.Data.validate, c.Ingest.validate, c.Trainer.validate, c.Video.validate, c.Streams.validate} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// ONNXEnabled reports whether the ONNX plugin should be launched.
func (c *Config) ONNXEnabled() bool { return c.ONNX.Enabled == nil || *c.ONNX.Enabled }

// isLoopback reports whether a listen address (host:port) is on a loopback
// address or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FileMode is an octal file mode in YAML ("0660" or 0660).
type FileMode uint32

// UnmarshalYAML parses an octal mode.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(n.Value, "0o"), 8, 32)
	if err != nil {
		return fmt.Errorf("line %d: mode %q is not octal", n.Line, n.Value)
	}
	*m = FileMode(v)
	return nil
}

// MarshalYAML writes the mode in octal ("0660").
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("%04o", uint32(m)), nil }
