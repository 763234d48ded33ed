// Package pluginmgr launches and supervises plugin processes for the daemon:
// it verifies a plugin binary's SHA-256 before every launch, starts it with
// hashicorp/go-plugin over gRPC with AutoMTLS, watches it (process exit and a
// periodic health check), kills a plugin that hangs, and relaunches it with
// exponential backoff. While a plugin is down, callers get ErrDown at once.
// It is imported only by the daemon.
package pluginmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/azaion/edge/sdk/api"
	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// ErrDown is returned while the plugin is not running.
var ErrDown = errors.New("plugin is not running")

// errConfig marks a launch that failed on the plugin's configuration (its
// binary, checksum, runtime library or settings): it is retried slowly.
var errConfig = errors.New("configuration error")

// State is a plugin's lifecycle state.
type State string

// States.
const (
	StateStarting State = "starting"
	StateReady    State = "ready"
	StateDown     State = "down"
	StateStopped  State = "stopped"
)

// Spec says how to launch one plugin whose dispensed client is a T (the
// plugin kind's Go interface: backend.Backend, trainer.Trainer).
type Spec[T any] struct {
	// Name is the plugin's short name (onnx, trainer); logs carry it.
	Name string
	// Path is the plugin binary. Its expected SHA-256 (hex) is read from
	// Path + ".sha256", written at build or install time.
	Path string
	// Plugins is the go-plugin set on the daemon side (Impl nil).
	Plugins goplugin.PluginSet
	// Dispense names the plugin in Plugins to dispense.
	Dispense string
	// Env is added to the plugin's environment (the daemon's is not passed
	// on, except PATH, HOME, TMPDIR and LANG).
	Env []string
	// ExtraFiles are open files the plugin inherits as descriptors 3, 4 ...
	// (exec.Cmd.ExtraFiles), on every launch: the shared image region.
	ExtraFiles []*os.File
	// OnStart runs after every (re)launch with the dispensed plugin, before
	// the plugin is marked ready; the daemon reloads models here. An error
	// kills the plugin and counts as a failed launch.
	OnStart func(ctx context.Context, impl T) error
	// OnReady runs (on its own goroutine) each time the plugin has become
	// ready; ctx ends when the supervisor stops. The daemon loads models here.
	OnReady func(ctx context.Context, impl T)
	// Health checks a running plugin; nil disables the periodic check.
	Health func(ctx context.Context, impl T) error
	// HealthEvery is the health check period (default 5s); HealthTimeout
	// bounds one check (default 3s); after HealthFailures consecutive
	// failures (default 3) the plugin is killed and relaunched.
	HealthEvery    time.Duration
	HealthTimeout  time.Duration
	HealthFailures int
	// MinBackoff and MaxBackoff bound the relaunch delay (defaults 250ms, 30s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// ConfigBackoff is the relaunch delay after a configuration error (a
	// missing or tampered binary, a plugin that exits with
	// sdk/plugin.ExitConfig); default 5m: fixing it takes a person.
	ConfigBackoff time.Duration
	// StartTimeout bounds OnStart (default 5m); go-plugin bounds the
	// handshake before it to 30s.
	StartTimeout time.Duration
	// StuckTimeout kills and relaunches a plugin that has calls in flight
	// (Begin) and has finished none of them for this long (0 disables).
	StuckTimeout time.Duration
	// LogLevel is the level given to the plugin's re-logged output.
	LogLevel string
	// TempDir, when set, is the plugin's private TMPDIR (mode 0700), emptied
	// before every launch, so what a runtime leaves there does not pile up.
	TempDir string
}

// Status is a snapshot of a plugin for the API.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Path      string    `json:"path"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	// StuckKills counts the kills of a plugin whose calls made no progress.
	StuckKills int `json:"stuck_kills"`
	// ConfigError is true when the last launch failed on the configuration.
	ConfigError bool `json:"config_error,omitempty"`
}

// API returns the snapshot as the local API reports it.
func (s Status) API() api.PluginState {
	return api.PluginState{Name: s.Name, State: string(s.State), PID: s.PID, Restarts: s.Restarts,
		LastError: s.LastError, Since: s.Since, ConfigError: s.ConfigError, StuckKills: s.StuckKills}
}

// Plugin supervises one plugin process and hands out its typed client.
type Plugin[T any] struct {
	spec Spec[T]
	log  *slog.Logger

	mu       sync.Mutex
	state    State
	client   *goplugin.Client
	impl     T
	pid      int
	restarts int
	lastErr  string
	cfgErr   bool
	since    time.Time
	kick     chan struct{} // closed or sent to make the supervisor relaunch now
	readyCh  chan struct{} // closed when the plugin becomes ready; replaced when it goes down

	// calls in flight (Begin) and when one last finished, for StuckTimeout.
	calls      int
	progress   time.Time
	stuckKills int
}

// New returns a supervisor for spec; Run starts it.
func New[T any](spec Spec[T], log *slog.Logger) *Plugin[T] {
	if spec.HealthEvery == 0 {
		spec.HealthEvery = 5 * time.Second
	}
	if spec.HealthTimeout == 0 {
		spec.HealthTimeout = 3 * time.Second
	}
	if spec.HealthFailures == 0 {
		spec.HealthFailures = 3
	}
	if spec.MinBackoff == 0 {
		spec.MinBackoff = 250 * time.Millisecond
	}
	if spec.MaxBackoff == 0 {
		spec.MaxBackoff = 30 * time.Second
	}
	if spec.ConfigBackoff == 0 {
		spec.ConfigBackoff = 5 * time.Minute
	}
	if spec.StartTimeout == 0 {
		spec.StartTimeout = 5 * time.Minute
	}
	return &Plugin[T]{spec: spec, log: log.With("plugin", spec.Name), state: StateStarting,
		since: time.Now(), kick: make(chan struct{}, 1), readyCh: make(chan struct{})}
}

// Name returns the plugin's name.
func (p *Plugin[T]) Name() string { return p.spec.Name }

// Get returns the plugin's client when it is ready, else ErrDown with the
// reason.
func (p *Plugin[T]) Get() (T, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != StateReady {
		var zero T
		if p.lastErr != "" {
			return zero, fmt.Errorf("%w: %s %s (%s)", ErrDown, p.spec.Name, p.state, p.lastErr)
		}
		return zero, fmt.Errorf("%w: %s %s", ErrDown, p.spec.Name, p.state)
	}
	return p.impl, nil
}

// Ready returns a channel closed when the plugin is (next) ready.
func (p *Plugin[T]) Ready() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readyCh
}

// Status returns a snapshot.
func (p *Plugin[T]) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Name: p.spec.Name, State: p.state, Path: p.spec.Path, PID: p.pid,
		Restarts: p.restarts, LastError: p.lastErr, Since: p.since, StuckKills: p.stuckKills, ConfigError: p.cfgErr}
}

// Begin records a call to the plugin that should finish in reasonable
// time (a detection); call the returned func when it has. A plugin with
// calls in flight that finishes none for StuckTimeout is killed.
func (p *Plugin[T]) Begin() (done func()) {
	p.mu.Lock()
	if p.calls == 0 {
		p.progress = time.Now()
	}
	p.calls++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.calls--
			p.progress = time.Now()
			p.mu.Unlock()
		})
	}
}

// stuck reports how long calls have been in flight without progress.
func (p *Plugin[T]) stuck() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == 0 {
		return 0
	}
	return time.Since(p.progress)
}

// Fail reports that a call to the plugin found it broken (connection lost).
// The supervisor checks the process at once instead of at the next tick.
func (p *Plugin[T]) Fail() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run launches the plugin and keeps it running until ctx ends, then kills it.
func (p *Plugin[T]) Run(ctx context.Context) {
	backoff := p.spec.MinBackoff
	for {
		started := time.Now()
		err := p.runOnce(ctx)
		if ctx.Err() != nil {
			p.setState(StateStopped, "")
			return
		}
		msg := "plugin exited"
		if err != nil {
			msg = err.Error()
		}
		if time.Since(started) > time.Minute {
			backoff = p.spec.MinBackoff // it ran fine for a while: start over
		}
		wait, cfg := backoff, errors.Is(err, errConfig)
		if cfg {
			wait = p.spec.ConfigBackoff
		}
		p.mu.Lock()
		p.restarts++
		p.cfgErr = cfg
		p.mu.Unlock()
		p.setState(StateDown, msg)
		if cfg {
			p.log.Error("plugin cannot start until its configuration is fixed; retrying slowly", "error", msg, "retry_in", wait)
		} else {
			p.log.Warn("plugin down, relaunching", "error", msg, "backoff", wait)
		}
		select {
		case <-ctx.Done():
			p.setState(StateStopped, "")
			return
		case <-time.After(wait):
		case <-p.kick: // asked to try now (e.g. a configuration reload)
		}
		if !cfg {
			backoff = min(backoff*2, p.spec.MaxBackoff)
		}
	}
}

// runOnce launches the plugin, waits until it dies, hangs or ctx ends, and
// always leaves the process killed.
func (p *Plugin[T]) runOnce(ctx context.Context) (err error) {
	p.setState(StateStarting, "")
	sum, err := expectedChecksum(p.spec.Path)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	cmd := exec.Command(p.spec.Path)
	cmd.Env = append(baseEnv(), p.spec.Env...)
	cmd.ExtraFiles = p.spec.ExtraFiles
	tail := &stderrTail{}
	if dir := p.spec.TempDir; dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("plugin temp dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("plugin temp dir: %w", err)
		}
		cmd.Env = append(cmd.Env, "TMPDIR="+dir)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdkplugin.Handshake,
		Plugins:          p.spec.Plugins,
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SecureConfig:     &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		GRPCDialOptions:  sdkplugin.DialOptions(),
		Logger:           newPluginLogger(p.spec.Name, p.spec.LogLevel),
		Stderr:           tail,
		StartTimeout:     30 * time.Second, // the handshake
	})
	defer func() {
		if err != nil && cmd.Process != nil {
			// A hung plugin may not answer go-plugin's graceful shutdown
			// either: kill the process first.
			_ = cmd.Process.Kill()
		}
		client.Kill()
	}()
	rpc, err := client.Client()
	if err != nil {
		return launchError(p.spec.Path, err, client, cmd, tail)
	}
	raw, err := rpc.Dispense(p.spec.Dispense)
	if err != nil {
		return fmt.Errorf("dispense %s: %w", p.spec.Dispense, err)
	}
	impl, ok := raw.(T)
	if !ok {
		return fmt.Errorf("dispense %s: got a %T, not a %T", p.spec.Dispense, raw, impl)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	p.mu.Lock()
	p.client, p.impl, p.pid = client, impl, pid
	p.mu.Unlock()
	p.log.Info("plugin started", "pid", pid, "path", p.spec.Path)
	if p.spec.OnStart != nil {
		sctx, cancel := context.WithTimeout(ctx, p.spec.StartTimeout)
		err := p.spec.OnStart(sctx, impl)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("start %s: did not finish starting (loading its models) within %s: %w", p.spec.Name, p.spec.StartTimeout, err)
			}
			return fmt.Errorf("start %s: %w", p.spec.Name, err)
		}
	}
	p.setState(StateReady, "")
	if p.spec.OnReady != nil {
		go p.spec.OnReady(ctx, impl)
	}
	return p.watch(ctx, client, impl, tail)
}

func (p *Plugin[T]) watch(ctx context.Context, client *goplugin.Client, impl T, tail *stderrTail) error {
	tick := time.NewTicker(min(p.spec.HealthEvery, 500*time.Millisecond))
	defer tick.Stop()
	lastHealth := time.Now()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-tick.C:
		}
		if client.Exited() {
			if msg := tail.lastError(); msg != "" {
				return fmt.Errorf("plugin process exited: %s", msg)
			}
			return errors.New("plugin process exited")
		}
		if st := p.spec.StuckTimeout; st > 0 && p.stuck() > st {
			p.mu.Lock()
			p.stuckKills++
			p.mu.Unlock()
			p.log.Error("plugin stuck: calls in flight and none finished; killing it", "for", p.stuck().Round(time.Second))
			err := fmt.Errorf("plugin stuck: no call finished in %s", st)
			p.setState(StateDown, err.Error()) // not ready while it is being killed (a stopped process takes a while)
			return err
		}
		if p.spec.Health == nil || time.Since(lastHealth) < p.spec.HealthEvery {
			continue
		}
		lastHealth = time.Now()
		hctx, cancel := context.WithTimeout(ctx, p.spec.HealthTimeout)
		err := p.spec.Health(hctx, impl)
		cancel()
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		failures++
		p.log.Warn("plugin health check failed", "error", err, "failures", failures)
		if failures >= p.spec.HealthFailures {
			err := fmt.Errorf("plugin unhealthy after %d checks: %w", failures, err)
			p.setState(StateDown, err.Error()) // not ready while it is being killed
			return err
		}
	}
}

func (p *Plugin[T]) setState(s State, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == p.state && lastErr == "" {
		return
	}
	wasReady := p.state == StateReady
	p.state, p.since = s, time.Now()
	if lastErr != "" {
		p.lastErr = lastErr
	}
	switch {
	case s == StateReady:
		p.lastErr, p.cfgErr = "", false
		p.progress = time.Now()
		close(p.readyCh)
	case wasReady:
		p.readyCh = make(chan struct{})
	}
	if s != StateReady {
		var zero T
		p.impl, p.pid = zero, 0
	}
}

// expectedChecksum reads the hex SHA-256 in path+".sha256" ("<hex>" or
// "<hex>  <file>", as sha256sum writes it).
func expectedChecksum(path string) ([]byte, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("plugin binary: %w", err)
	}
	b, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return nil, fmt.Errorf("plugin checksum: %w (the build writes it; refusing to launch an unverified binary)", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return nil, fmt.Errorf("plugin checksum %s.sha256 is empty", path)
	}
	sum, err := hex.DecodeString(fields[0])
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("plugin checksum %s.sha256 is not a hex SHA-256", path)
	}
	return sum, nil
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// baseEnv is the part of the daemon's environment a plugin inherits: no
// credentials travel to plugins by accident.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "LD_LIBRARY_PATH", "AZAION_LOG_LEVEL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// newPluginLogger re-logs a plugin's output under "plugin.<name>".
func newPluginLogger(name, level string) hclog.Logger {
	if level == "" {
		level = "info"
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin." + name,
		Level:      hclog.LevelFromString(level),
		Output:     os.Stderr,
		JSONFormat: !isTerminal(os.Stderr),
	})
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
