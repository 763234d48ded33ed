package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/pluginconfig"
)

// backendSet is the daemon's detection backend plugins by name; it
// implements sched.Backends and gives the catalog its targets.
type backendSet struct {
	mu      sync.Mutex
	plugins map[string]*pluginmgr.Plugin[backend.Backend]
	infos   map[string]*backend.Info
}

func newBackendSet() *backendSet {
	return &backendSet{plugins: map[string]*pluginmgr.Plugin[backend.Backend]{}, infos: map[string]*backend.Info{}}
}

// addBackend supervises the detection backend plugin azaion-plugin-<name>
// from the plugin folder with its configuration; on every (re)launch it
// checks the API version, records what the plugin reports and loads the
// backend's models.
func (d *Daemon) addBackend(name string, cfg pluginconfig.Config) error {
	env, err := pluginconfig.Encode(cfg)
	if err != nil {
		return fmt.Errorf("backend %s: %w", name, err)
	}
	envs := []string{env}
	var extra []*os.File
	if d.shared != nil { // the plugin maps it read-only (sdk/shmem.FromEnv)
		extra = []*os.File{d.shared.Region().File()}
		envs = append(envs, d.shared.Region().Env()...)
	}
	var p *pluginmgr.Plugin[backend.Backend]
	p = pluginmgr.New(pluginmgr.Spec[backend.Backend]{
		Name:         name,
		Path:         filepath.Join(d.cfg.Paths.Plugins, "azaion-plugin-"+name),
		Plugins:      backend.ClientPluginSet(d.shared),
		Dispense:     backend.PluginName,
		Env:          envs,
		ExtraFiles:   extra,
		LogLevel:     d.cfg.Log.Level,
		TempDir:      filepath.Join(d.cfg.Paths.State, "tmp", "plugin-"+name),
		StartTimeout: d.cfg.Limits.PluginStartTimeout,
		StuckTimeout: d.cfg.Limits.StuckTimeout,
		OnStart: func(ctx context.Context, b backend.Backend) error {
			info, err := b.Info(ctx)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			if !slices.Contains(info.APIVersions, backend.APIVersion) {
				return fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, backend.APIVersion)
			}
			d.backends.setInfo(name, info)
			return nil
		},
		OnReady: func(ctx context.Context, b backend.Backend) {
			d.sched.LoadAll(ctx, name, tracked{Backend: b, begin: p.Begin})
		},
		Health: func(ctx context.Context, b backend.Backend) error { return b.Health(ctx) },
	}, d.log)
	d.backends.add(p)
	d.tasks = append(d.tasks, p.Run)
	registerPluginMetrics(d.reg, p.Status)
	return nil
}

// registerPluginMetrics exports a plugin's restarts and stuck kills.
func registerPluginMetrics(reg prometheus.Registerer, status func() pluginmgr.Status) {
	name := status().Name
	labels := prometheus.Labels{"plugin": name}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "azaion_plugin_restarts_total",
			Help: "Relaunches of the plugin (crashes, hangs, failed starts).", ConstLabels: labels},
			func() float64 { return float64(status().Restarts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "azaion_plugin_stuck_kills_total",
			Help: "Kills of the plugin because calls in flight made no progress.", ConstLabels: labels},
			func() float64 { return float64(status().StuckKills) }),
	)
}

// tracked is a backend whose detections the plugin supervisor watches for
// progress (pluginmgr.Spec.StuckTimeout).
type tracked struct {
	backend.Backend
	begin func() (done func())
}

// Detect implements backend.Backend.
func (t tracked) Detect(ctx context.Context, handle string, images [][]byte, p backend.DetectParams) ([]backend.ImageResult, error) {
	done := t.begin()
	defer done()
	return t.Backend.Detect(ctx, handle, images, p)
}

// DetectVideo implements backend.Backend. A video is one long call: each
// event counts as progress, and the time the client takes to consume an
// event does not count against the plugin.
func (t tracked) DetectVideo(ctx context.Context, handle string, req backend.VideoRequest, emit func(backend.VideoEvent) error) error {
	done := t.begin()
	defer func() { done() }()
	return t.Backend.DetectVideo(ctx, handle, req, func(ev backend.VideoEvent) error {
		done()
		err := emit(ev)
		done = t.begin()
		return err
	})
}

func (s *backendSet) add(p *pluginmgr.Plugin[backend.Backend]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plugins[p.Name()] = p
}

func (s *backendSet) setInfo(name string, info *backend.Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.infos[name] = info
}

func (s *backendSet) get(name string) *pluginmgr.Plugin[backend.Backend] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plugins[name]
}

// Backend implements sched.Backends.
func (s *backendSet) Backend(name string) (backend.Backend, error) {
	p := s.get(name)
	if p == nil {
		return nil, fmt.Errorf("no backend %s is configured (enable it in the config)", name)
	}
	b, err := p.Get()
	if err != nil {
		return nil, err
	}
	return tracked{Backend: b, begin: p.Begin}, nil
}

// Failed implements sched.Backends.
func (s *backendSet) Failed(name string) {
	if p := s.get(name); p != nil {
		p.Fail()
	}
}

// targets lists the running backends with what they reported, for the catalog.
func (s *backendSet) targets() []catalog.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.Target
	for name := range s.plugins {
		t := catalog.Target{Backend: name}
		if info := s.infos[name]; info != nil {
			t.Devices = info.Devices
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Backend < out[j].Backend })
	return out
}

func (s *backendSet) status() []api.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.Backend{}
	for name, p := range s.plugins {
		b := api.Backend{PluginState: p.Status().API()}
		if info := s.infos[name]; info != nil {
			b.Version, b.Formats, b.Providers, b.Devices = info.Version, info.Formats, info.Providers, info.Devices
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
