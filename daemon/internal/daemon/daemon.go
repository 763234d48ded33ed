// Package daemon is the composition root of `azaion serve`: it wires the
// configuration, the plugin supervisors, the scheduler, the model catalog,
// the subsystems and the listeners, and runs them until the context ends
// (SIGTERM drains; SIGHUP re-syncs the catalog). It holds no logic of its
// own beyond that wiring. It is imported only by daemon/cmd/azaion.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/ingest"
	"github.com/azaion/edge/daemon/internal/jobs"
	"github.com/azaion/edge/daemon/internal/listen"
	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/daemon/internal/streams"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/shmem"
	"github.com/azaion/edge/sdk/trainer"
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
	catalog  *catalog.Catalog
	backends *backendSet
	streams  *streams.Manager
	// shared is the image memory shared with the detection plugins; nil
	// when limits.shared_images is 0.
	shared *shmem.Pool
	// tasks are the subsystems' long-running functions, run by Run.
	tasks []func(ctx context.Context)
}

// New builds a daemon from cfg; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	if err := os.MkdirAll(cfg.Paths.State, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &Daemon{cfg: cfg, log: log, reg: reg, backends: newBackendSet(), shared: newSharedImages(cfg, log, reg)}
	built := false
	defer func() {
		if !built && d.shared != nil {
			d.shared.Close()
		}
	}()
	d.sched = sched.New(d.backends, sched.Options{
		QueueSize:    cfg.Limits.QueueSize,
		MaxQueueWait: cfg.Limits.MaxQueueWait,
		KeepAlive:    cfg.Models.KeepAlive,
		LoadTimeout:  cfg.Models.LoadTimeout,
		LoadParallel: min(4, runtime.NumCPU()),
		Limits: map[string]sched.Limits{
			catalog.BackendONNX: {MaxModels: cfg.ONNX.MaxLoadedModels, MaxBytes: cfg.ONNX.MaxLoadedBytes},
		},
		Log: log.With("component", "sched"),
	})
	d.tasks = append(d.tasks, d.sched.Run)

	// models: the local folder and the encrypted store (issue 3), served
	// even with the API and CDN down; pulls through the API and the CDN.
	dist, err := distribution.FromConfig(cfg, "", log.With("component", "models"))
	if err != nil {
		return nil, err
	}
	d.catalog = catalog.New(catalog.Options{ModelsDir: cfg.Paths.Models, Store: dist.Store, Keys: dist.Keys,
		Targets: d.backends.targets, Registry: d.sched, Log: log.With("component", "catalog")})
	dist.Choose = d.catalog.Choose // a pulled bundle: the artifact for this machine's backends
	var ready []func(context.Context) []string
	var trainerPlugin *pluginmgr.Plugin[trainer.Trainer]
	if cfg.Trainer.Enabled {
		spec, err := jobs.PluginSpec(cfg)
		if err != nil {
			return nil, err
		}
		trainerPlugin = pluginmgr.New(spec, log)
		d.tasks = append(d.tasks, trainerPlugin.Run)
		registerPluginMetrics(reg, trainerPlugin.Status)
		ready = append(ready, func(context.Context) []string {
			if st := trainerPlugin.Status(); st.State != pluginmgr.StateReady {
				return []string{fmt.Sprintf("trainer plugin (jobs) is %s: %s", st.State, st.LastError)}
			}
			return nil
		})
	}
	video, err := d.videoOptions()
	if err != nil {
		return nil, err
	}
	d.api = localapi.New(localapi.Options{
		Sched:          d.sched,
		Backends:       func(context.Context) []api.Backend { return d.backends.status() },
		ReadyChecks:    ready,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		MaxPixels:      cfg.Limits.MaxPixels,
		RequestTimeout: cfg.Limits.RequestTimeout,
		BodyTimeout:    cfg.Limits.BodyTimeout,
		MaxUploads:     cfg.Limits.MaxUploads,
		AllowedHosts:   cfg.HTTP.AllowedHosts,
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		ModelsHint:     d.catalog.Hint(),
		Shared:         d.shared,
		Video:          video,
		Registry:       reg,
		Log:            log.With("component", "api"),
	})
	video.Outputs.Register(d.api.Handle)
	d.tasks = append(d.tasks, video.Outputs.Run)
	if err := d.addStreams(); err != nil {
		return nil, err
	}
	if cfg.ONNXEnabled() {
		if err := d.addBackend(catalog.BackendONNX, &cfg.ONNX.ONNX); err != nil {
			return nil, err
		}
	}
	if err := d.catalog.Sync(context.Background()); err != nil {
		return nil, err
	}
	dist.Register(d.api.Handle, d.catalog.AddStored)

	// subsystems: each adds its routes with d.api.Handle, its metrics with
	// d.reg.MustRegister and its long-running work to d.tasks.
	if trainerPlugin != nil { // trainer jobs (issue 5)
		jm := jobs.New(jobs.PluginRunner(trainerPlugin), jobs.Options{DataRoot: cfg.Data.Root, StateDir: cfg.Paths.State, Defaults: jobs.Defaults(cfg),
			AutoWatch: cfg.Trainer.Watch, Log: log.With("component", "jobs"),
			Local:   map[string]jobs.LocalJob{api.JobPublish: {Runner: distribution.RunPublisher{Service: dist}, Check: distribution.CheckPublishParams}},
			Trainer: func() api.PluginState { return trainerPlugin.Status().API() }})
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
	built = true
	return d, nil
}

// Run serves until ctx ends, then drains. SIGHUP rescans the models folder.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lns []struct {
		ln net.Listener
		l  localapi.Listener
	}
	if a := d.cfg.HTTP.Addr; a != "" {
		ln, err := listen.TCP(a)
		if err != nil {
			return err
		}
		lns = append(lns, struct {
			ln net.Listener
			l  localapi.Listener
		}{ln, localapi.Listener{Token: d.cfg.HTTP.Token.Reveal(), TCP: true, Addr: ln.Addr().String()}})
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
			ln net.Listener
			l  localapi.Listener
		}{ln, localapi.Listener{}})
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
				if err := d.catalog.Sync(ctx); err != nil {
					d.log.Error("rescan models", "error", err)
				}
				d.sched.LoadPending(ctx)
			}
		}
	})

	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- d.api.Serve(ctx, l.ln, l.l, drainTimeout) }()
	}
	d.notifySystemd(ctx, &wg) // Type=notify readiness and watchdog
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
	if d.shared != nil {
		d.shared.Close() // unmapped once no request holds a slot
	}
	d.log.Info("stopped")
	return err
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
