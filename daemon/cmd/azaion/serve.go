package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/daemon"
	"github.com/azaion/edge/sdk/version"
)

func init() {
	register(&command{Name: "serve", Summary: "run the daemon in the foreground", Run: runServe})
}

func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "config file (default "+config.DefaultPath+" when it exists; env AZAION_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	log.Info("azaion starting", "version", version.Version, "pid", os.Getpid())
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// loadConfig loads the config from the flag, AZAION_CONFIG or the default path.
func loadConfig(flagPath string) (*config.Config, error) {
	path, explicit := flagPath, flagPath != ""
	if !explicit {
		if p := os.Getenv("AZAION_CONFIG"); p != "" {
			path, explicit = p, true
		} else {
			path = config.DefaultPath
		}
	}
	return config.Load(path, explicit)
}

// newLogger returns the daemon's slog logger: JSON unless stderr is a
// terminal (or as configured).
func newLogger(c config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "" {
		format = "json"
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
