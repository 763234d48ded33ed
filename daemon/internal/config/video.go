package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/videosrc"
)

// VideoConfig bounds video detection (POST /v1/detect/video) and keeps its
// annotated outputs (GET /v1/outputs/{id}).
type VideoConfig struct {
	// MediaDir is the only folder whose files a request may name with
	// `path` (env AZAION_MEDIA_DIR); empty refuses path requests.
	MediaDir string `yaml:"media_dir"`
	// MaxUploadBytes bounds an uploaded video (413 above); default 2 GiB.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// MaxFrames and MaxDuration bound the part of a file one request
	// decodes (422 above); defaults 216000 frames and 2h.
	MaxFrames   int64         `yaml:"max_frames"`
	MaxDuration time.Duration `yaml:"max_duration"`
	// MaxJobs is how many videos are processed at once (429 above); default 2.
	MaxJobs int `yaml:"max_jobs"`
	// Every is the default frame step: the model runs on every Every-th frame (default 4).
	Every int `yaml:"every"`
	// AnnotateCodec is the annotated video's codec: mp4v (MPEG-4 Part 2,
	// default, fast) or avc1 (H.264, plays in browsers, slower to encode).
	AnnotateCodec string `yaml:"annotate_codec"`
	// OutputTTL is how long an annotated video stays fetchable (default 1h).
	OutputTTL time.Duration `yaml:"output_ttl"`
}

func defaultVideo() VideoConfig {
	return VideoConfig{MaxUploadBytes: 2 << 30, MaxFrames: 216_000, MaxDuration: 2 * time.Hour, MaxJobs: 2,
		Every: 4, AnnotateCodec: backend.CodecMPEG4, OutputTTL: time.Hour}
}

func (c *VideoConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_MEDIA_DIR"); ok {
		c.MediaDir = v
	}
	return nil
}

func (c *VideoConfig) validate() error {
	switch {
	case c.MediaDir != "" && !filepath.IsAbs(c.MediaDir):
		return fmt.Errorf("config: video.media_dir %q is not an absolute path", c.MediaDir)
	case c.MaxUploadBytes <= 0:
		return fmt.Errorf("config: video.max_upload_bytes must be positive")
	case c.MaxFrames <= 0:
		return fmt.Errorf("config: video.max_frames must be positive")
	case c.MaxDuration <= 0:
		return fmt.Errorf("config: video.max_duration must be positive")
	case c.MaxJobs < 1 || c.MaxJobs > 64:
		return fmt.Errorf("config: video.max_jobs %d is out of range 1..64", c.MaxJobs)
	case c.Every < 1 || c.Every > 1000:
		return fmt.Errorf("config: video.every %d is out of range 1..1000", c.Every)
	case c.OutputTTL < time.Second:
		return fmt.Errorf("config: video.output_ttl %s is under 1s", c.OutputTTL)
	}
	switch c.AnnotateCodec {
	case backend.CodecMPEG4, backend.CodecH264:
	default:
		return fmt.Errorf("config: video.annotate_codec %q: want %s or %s", c.AnnotateCodec, backend.CodecMPEG4, backend.CodecH264)
	}
	return nil
}

// StreamsConfig configures the live stream sessions (/v1/streams).
type StreamsConfig struct {
	// MaxSessions bounds the sessions (429 above); default 8.
	MaxSessions int `yaml:"max_sessions"`
	// ReconnectMin and ReconnectMax bound the backoff between reconnects
	// (defaults 500ms and 30s).
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Sessions start with the daemon.
	Sessions []StreamSpec `yaml:"sessions"`
}

// StreamSpec is a stream session declared in the configuration.
type StreamSpec struct {
	// ID names the session in the API (letters, digits, - _ .).
	ID string `yaml:"id"`
	// Source is the stream URL (rtsp://, rtsps://) without a password;
	// SourceFile is a file (mode 0600) holding a URL with credentials.
	// Exactly one is set.
	Source     videosrc.Secret `yaml:"source"`
	SourceFile string          `yaml:"source_file"`
	// Model is the model name (optional when one model is served).
	Model string `yaml:"model"`
	// Every runs the model on every Every-th frame (default video.every).
	Every int `yaml:"every"`
	// Conf, IoU, MaxDet and Classes are the detection parameters (defaults as /v1/detect).
	Conf    float64 `yaml:"conf"`
	IoU     float64 `yaml:"iou"`
	MaxDet  int     `yaml:"max_det"`
	Classes []int   `yaml:"classes"`
}

// IDPattern is what a stream or output id may look like.
var IDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func defaultStreams() StreamsConfig {
	return StreamsConfig{MaxSessions: 8, ReconnectMin: 500 * time.Millisecond, ReconnectMax: 30 * time.Second}
}

// applyEnv reads the source files of the configured sessions.
func (c *StreamsConfig) applyEnv(env LookupEnv) error {
	for i := range c.Sessions {
		s := &c.Sessions[i]
		if s.SourceFile == "" {
			continue
		}
		if s.Source != "" {
			return fmt.Errorf("config: streams.sessions[%d]: set source or source_file, not both", i)
		}
		v, err := ReadSecretFile(s.SourceFile)
		if err != nil {
			return fmt.Errorf("config: streams.sessions[%d].source_file: %w", i, err)
		}
		s.Source = videosrc.Secret(v.Reveal())
	}
	return nil
}

func (c *StreamsConfig) validate() error {
	switch {
	case c.MaxSessions < 1 || c.MaxSessions > 256:
		return fmt.Errorf("config: streams.max_sessions %d is out of range 1..256", c.MaxSessions)
	case c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("config: streams.reconnect_min and reconnect_max: want 0 < min <= max")
	case len(c.Sessions) > c.MaxSessions:
		return fmt.Errorf("config: streams.sessions: %d sessions, over streams.max_sessions %d", len(c.Sessions), c.MaxSessions)
	}
	seen := map[string]bool{}
	for i, s := range c.Sessions {
		field := fmt.Sprintf("streams.sessions[%d]", i)
		if !IDPattern.MatchString(s.ID) {
			return fmt.Errorf("config: %s.id %q: want 1-64 letters, digits, '.', '_' or '-'", field, s.ID)
		}
		if seen[s.ID] {
			return fmt.Errorf("config: %s.id %q is used twice", field, s.ID)
		}
		seen[s.ID] = true
		if s.Source == "" {
			return fmt.Errorf("config: %s: no source (set source, or source_file for a URL with credentials)", field)
		}
		if _, err := videosrc.CheckStream(s.Source.Reveal()); err != nil {
			return fmt.Errorf("config: %s.source: %w", field, err)
		}
		if videosrc.HasCredentials(s.Source.Reveal()) && s.SourceFile == "" {
			return fmt.Errorf("config: %s.source %s carries a credential: put the URL in a file of mode 0600 and name it with source_file", field, s.Source)
		}
		switch {
		case s.Every < 0 || s.Every > 1000:
			return fmt.Errorf("config: %s.every %d is out of range 1..1000", field, s.Every)
		case s.Conf < 0 || s.Conf > 1, s.IoU < 0 || s.IoU > 1:
			return fmt.Errorf("config: %s: conf and iou must be 0..1", field)
		case s.MaxDet < 0 || s.MaxDet > 10000:
			return fmt.Errorf("config: %s.max_det %d is out of range 1..10000", field, s.MaxDet)
		}
	}
	return nil
}
