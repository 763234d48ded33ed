package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/azaion/edge/sdk/version"
)

func init() {
	register(&command{Name: "version", Summary: "print the daemon's, the plugins' and the runtimes' versions", Run: runVersion})
}

// versionInfo is `azaion version --json`.
type versionInfo struct {
	Daemon  string          `json:"daemon"`
	Go      string          `json:"go"`
	Arch    string          `json:"arch"`
	Plugins []pluginVersion `json:"plugins"`
}

type pluginVersion struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Version is the plugin's, with its runtime's in parentheses.
	Version     string   `json:"version,omitempty"`
	APIVersions []string `json:"api_versions,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// runVersion prints the daemon's version, then starts each installed plugin
// (as the daemon would) to print its version and its runtime's. It exits 1
// when a plugin does not start.
func runVersion(ctx context.Context, args []string) error {
	fs := newFlags("version")
	cfgPath := fs.String("config", "", "config file (default "+defaultConfigHint+")")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long a plugin may take to start")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	v := versionInfo{Daemon: version.Version, Go: runtime.Version(), Arch: runtime.GOOS + "/" + runtime.GOARCH}
	failed := false
	for _, pp := range probes(cfg) {
		pv := pluginVersion{Name: pp.name, Path: pp.path}
		if _, err := os.Stat(pp.path); err != nil {
			if !pp.enabled {
				continue // not installed and not wanted
			}
			pv.Error, failed = err.Error(), true
			v.Plugins = append(v.Plugins, pv)
			continue
		}
		f, err := pp.probe(ctx, *timeout, nil)
		if f != nil {
			pv.Version, pv.APIVersions = f.Version, f.APIVersions
		}
		if err != nil {
			pv.Error, failed = err.Error(), true
		}
		v.Plugins = append(v.Plugins, pv)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Println(string(b))
	} else {
		fmt.Printf("azaion %s (%s %s)\n", v.Daemon, v.Go, v.Arch)
		for _, p := range v.Plugins {
			if p.Error != "" {
				fmt.Printf("plugin %s: %s: %s\n", p.Name, p.Path, p.Error)
				continue
			}
			fmt.Printf("plugin %s %s, API %s, %s\n", p.Name, p.Version, strings.Join(p.APIVersions, " "), p.Path)
		}
	}
	if failed {
		return errors.New("a plugin did not report its version")
	}
	return nil
}
