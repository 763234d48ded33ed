// Package daemon is the composition root of `azaion serve`: it wires the
// configuration, the plugin supervisors, the scheduler, the local model
// folder, the subsystems and the listeners, and runs them until the context
// ends (SIGTERM drains). It is imported only by daemon/cmd/azaion.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/fetch"
	"github.com/azaion/edge/daemon/internal/ingest"
	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/listen"
	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// drainTimeout bounds how long in-flight requests may finish after SIGTERM.
const drainTimeout = 15 * time.Second

// Daemon is a running `azaion serve`.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	sched    *sched.Scheduler
	api      *localapi.Server
	backends *backendSet
	// tasks are the subsystems' long-running functions, run by Run.
	tasks []func(ctx context.Context)
	// localModels are the names registered from the models folder.
	localModels map[string]bool
	// rescans run on SIGHUP after the models folder is rescanned: the
	// subsystems register the models that appeared in their stores.
	rescans []func(ctx context.Context)
}

// New builds a daemon from cfg; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	if err := os.MkdirAll(cfg.Paths.State, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &Daemon{cfg: cfg, log: log, reg: reg, backends: &backendSet{plugins: map[string]*pluginmgr.Plugin{}},
		localModels: map[string]bool{}}
	d.sched = sched.New(d.backends, cfg.Limits.QueueSize, log.With("component", "sched"))
	d.api = localapi.New(localapi.Options{
		Sched:          d.sched,
		Backends:       d.backendStatus,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		MaxPixels:      cfg.Limits.MaxPixels,
		RequestTimeout: cfg.Limits.RequestTimeout,
		ModelsHint: fmt.Sprintf("no models yet: copy a YOLO .onnx file (optionally with a NAME.yaml descriptor) into %s "+
			"and send SIGHUP or restart the daemon, or run `azaion models import FILE`", cfg.Paths.Models),
		Registry: reg,
		Log:      log.With("component", "api"),
	})
	if cfg.ONNXEnabled() {
		if err := d.addONNX(); err != nil {
			return nil, err
		}
	}
	if err := d.scanModels(); err != nil {
		return nil, err
	}

	// subsystems: each subsystem adds its routes with d.api.Handle, its
	// metrics with d.reg.MustRegister, its plugins with d.addPlugin and its
	// long-running work with d.tasks = append(d.tasks, ...).
	if cfg.Trainer.Enabled {
		jm := jobs.New(jobs.PluginRunner(d.addPlugin(jobs.PluginSpec(cfg))),
			jobs.Options{DataRoot: cfg.Data.Root, Defaults: jobs.Defaults(cfg), AutoWatch: cfg.Trainer.Watch, Log: log.With("component", "jobs")})
		jm.Register(d.api.Handle)
		d.tasks = append(d.tasks, jm.Run)
	}
	if cfg.Ingest.Enabled { // annotation stream -> data root (issue 4)
		ing, err := ingest.New(ingest.OptionsFrom(cfg, log.With("component", "ingest")))
		if err != nil {
			return nil, err
		}
		d.reg.MustRegister(ing.Collectors()...)
		d.tasks = append(d.tasks, func(ctx context.Context) {
			if err := ing.Run(ctx); err != nil {
				log.Error("ingest stopped", "error", err)
			}
		})
	}

	// models (issue 3): the encrypted local store; serve cached models at
	// start (even with the API and CDN down) and pull new ones.
	ms, err := fetch.FromConfig(cfg, "", log.With("component", "models"))
	if err != nil {
		return nil, err
	}
	addStored := func(ctx context.Context, m *modelstore.Manifest) error {
		desc := fetch.Descriptor(m)
		return d.sched.Add(sched.Source{Descriptor: desc, Backend: fetch.BackendFor(desc.Format), Origin: "store:" + m.ID(), Open: ms.Open(m)})
	}
	// Serve the latest stored version of each model now, and on SIGHUP
	// whatever was imported or pulled since.
	scanStore := func(ctx context.Context) {
		addNew := func(ctx context.Context, m *modelstore.Manifest) error {
			if v, ok := d.sched.Registered(m.Name); ok && v == m.Version {
				return nil // already served
			}
			return addStored(ctx, m)
		}
		if err := ms.LoadCached(ctx, addNew, func(n string) bool { return d.localModels[n] }); err != nil {
			log.Error("stored models", "error", err)
		}
	}
	scanStore(context.Background())
	d.rescans = append(d.rescans, scanStore)
	ms.Register(d.api.Handle, func(ctx context.Context, m *modelstore.Manifest) error {
		if err := addStored(ctx, m); err != nil {
			return err
		}
		if err := d.sched.Load(ctx, m.Name); err != nil && !errors.Is(err, sched.ErrUnavailable) {
			return err
		}
		return nil
	})

	return d, nil
}

// addONNX registers the ONNX Runtime backend plugin.
func (d *Daemon) addONNX() error {
	c := d.cfg.ONNX
	pc, err := json.Marshal(map[string]any{
		"library":          c.Library,
		"intra_op_threads": c.IntraOpThreads,
		"inter_op_threads": c.InterOpThreads,
		"spinning":         c.Spinning,
		"max_batch":        c.MaxBatch,
		"batch_wait":       c.BatchWait.String(),
		"providers":        c.Providers,
		"fallback_cpu":     c.FallbackCPU,
	})
	if err != nil {
		return err
	}
	d.addBackendPlugin("onnx", []string{sdkplugin.ConfigEnv + "=" + string(pc)})
	return nil
}

// addBackendPlugin supervises an inference backend plugin binary
// azaion-plugin-<name> from the plugin folder; on every (re)launch it checks
// the API version and loads the backend's models.
func (d *Daemon) addBackendPlugin(name string, env []string) {
	spec := pluginmgr.Spec{
		Name:     name,
		Path:     filepath.Join(d.cfg.Paths.Plugins, "azaion-plugin-"+name),
		Plugins:  backend.PluginSet(nil),
		Dispense: backend.PluginName,
		Env:      env,
		LogLevel: d.cfg.Log.Level,
		TempDir:  filepath.Join(d.cfg.Paths.State, "tmp", "plugin-"+name),
		OnStart: func(ctx context.Context, impl any) error {
			b := impl.(backend.Backend)
			info, err := b.Info(ctx)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			if !contains(info.APIVersions, backend.APIVersion) {
				return fmt.Errorf("plugin speaks %v, the daemon needs %s", info.APIVersions, backend.APIVersion)
			}
			d.backends.setInfo(name, info)
			d.sched.LoadAll(ctx, name, b)
			return nil
		},
		Health: func(ctx context.Context, impl any) error { return impl.(backend.Backend).Health(ctx) },
	}
	d.addPlugin(spec)
}

// addPlugin supervises a plugin from Run on.
func (d *Daemon) addPlugin(spec pluginmgr.Spec) *pluginmgr.Plugin {
	p := pluginmgr.New(spec, d.log)
	d.backends.add(p)
	d.tasks = append(d.tasks, p.Run)
	return p
}

// Run serves until ctx ends, then drains. SIGHUP rescans the models folder.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lns []struct {
		ln    net.Listener
		token string
	}
	if a := d.cfg.HTTP.Addr; a != "" {
		ln, err := listen.TCP(a)
		if err != nil {
			return err
		}
		lns = append(lns, struct {
			ln    net.Listener
			token string
		}{ln, d.cfg.HTTP.Token.Reveal()})
		d.log.Info("listening", "addr", ln.Addr().String(), "auth", d.cfg.HTTP.Token != "")
	}
	if p := d.cfg.Socket.Path; p != "" {
		ln, err := listen.Unix(p, os.FileMode(d.cfg.Socket.Mode), d.cfg.Socket.Group)
		if err != nil {
			for _, l := range lns {
				l.ln.Close()
			}
			return err
		}
		defer os.Remove(p)
		lns = append(lns, struct {
			ln    net.Listener
			token string
		}{ln, ""})
		d.log.Info("listening", "socket", p, "mode", fmt.Sprintf("%04o", d.cfg.Socket.Mode))
	}

	var wg sync.WaitGroup
	for _, t := range d.tasks {
		wg.Go(func() { t(ctx) })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.log.Info("SIGHUP: rescanning the models folder and the model store", "dir", d.cfg.Paths.Models)
				if err := d.scanModels(); err != nil {
					d.log.Error("rescan models", "error", err)
				}
				for _, rescan := range d.rescans {
					rescan(ctx)
				}
				d.loadPending(ctx)
			}
		}
	})

	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- d.api.Serve(ctx, l.ln, l.token, drainTimeout) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		d.log.Error("listener failed", "error", err)
	}
	cancel()
	for range len(lns) - boolToInt(err != nil) {
		if e := <-errc; e != nil && !errors.Is(e, context.Canceled) {
			d.log.Warn("drain", "error", e)
		}
	}
	wg.Wait()
	d.log.Info("stopped")
	return err
}

// loadPending loads registered models whose backend is ready but which are
// not loaded yet (added by a rescan).
func (d *Daemon) loadPending(ctx context.Context) {
	for _, m := range d.sched.Models() {
		if m.State == sched.StateReady {
			continue
		}
		if err := d.sched.Load(ctx, m.Name); err != nil {
			d.log.Warn("load model", "model", m.Name, "error", err)
		}
	}
}

func (d *Daemon) backendStatus(ctx context.Context) []api.Backend {
	return d.backends.status()
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
