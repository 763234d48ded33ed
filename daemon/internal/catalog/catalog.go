// Package catalog knows which models the daemon serves and where each comes
// from: the plain model files in the local models folder and the latest
// version of each model in the encrypted local store (a local file shadows a
// stored model of the same name). It decides which backend serves which
// artifact (Select, BackendFor) and what to (re)register with the scheduler
// on start, on SIGHUP and after a pull or import (Sync, AddStored). Backend
// names are defined here and nowhere else. It is imported only by the daemon.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/model"
)

// ErrShadowed: a stored model cannot be served because a local model file
// of the same name is.
var ErrShadowed = errors.New("shadowed by a local model file")

// Registry is where the catalog registers the models to serve
// (*sched.Scheduler implements it).
type Registry interface {
	// Add registers a model, replacing one of the same name.
	Add(src sched.Source) error
	// Remove unloads and forgets a model.
	Remove(ctx context.Context, name string) error
	// Load loads a registered model now, when its backend is ready.
	Load(ctx context.Context, name string) error
}

// Options configure a Catalog.
type Options struct {
	// ModelsDir is the folder of plain local models (optional sidecar
	// descriptor NAME.yaml beside each).
	ModelsDir string
	// Store is the encrypted local store; nil serves local files only.
	Store *modelstore.Store
	// Keys opens stored models.
	Keys modelstore.Keyring
	// Targets returns the backends this daemon runs, with what they
	// reported (called whenever an artifact is chosen).
	Targets func() []Target
	// Registry receives the models.
	Registry Registry
	Log      *slog.Logger
}

// Catalog is the set of models the daemon serves.
type Catalog struct {
	opts Options

	mu sync.Mutex
	// served is what is registered, by model name.
	served map[string]served
}

// served records where a registered model came from.
type served struct {
	origin  string // "file:PATH" or "store:NAME:VERSION"
	version string
}

// New returns a Catalog; Sync registers the models.
func New(opts Options) *Catalog {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Targets == nil {
		opts.Targets = func() []Target { return nil }
	}
	return &Catalog{opts: opts, served: map[string]served{}}
}

// Hint says how to add a model, for an empty model list.
func (c *Catalog) Hint() string {
	return fmt.Sprintf("no models yet: copy a YOLO .onnx file (optionally with a NAME.yaml descriptor) into %s "+
		"and send SIGHUP or restart the daemon, or run `azaion models import FILE`", c.opts.ModelsDir)
}

// Sync brings the registry in line with the models folder and the store:
// new local files and newly stored versions are registered, local models
// whose file is gone are removed (a stored version of the same name then
// takes its place). Unchanged models are left alone; a changed local file is
// read again at its next load. Problems with single models are logged and
// do not stop the others, nor does an unreadable store; the error reports
// only an unreadable models folder.
func (c *Catalog) Sync(ctx context.Context) error {
	local, err := c.scanLocal()
	if err != nil {
		return err
	}
	stored, err := c.latestStored()
	if err != nil { // a broken store does not stop the local models
		c.opts.Log.Error("stored models", "error", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, s := range c.served {
		if _, ok := local[name]; ok || !isFile(s.origin) {
			continue
		}
		c.opts.Log.Info("model file removed, unloading", "model", name)
		_ = c.opts.Registry.Remove(ctx, name)
		delete(c.served, name)
	}
	names := make([]string, 0, len(local))
	for name, src := range local {
		names = append(names, name)
		if c.served[name].origin == src.Origin {
			continue
		}
		c.register(src)
	}
	sort.Strings(names)
	if len(names) == 0 {
		c.opts.Log.Warn("no models in the models folder: copy a YOLO .onnx file there and send SIGHUP, or run `azaion models import FILE`", "dir", c.opts.ModelsDir)
	} else {
		c.opts.Log.Info("local models", "dir", c.opts.ModelsDir, "models", names)
	}
	for name, m := range stored {
		if _, ok := local[name]; ok {
			c.opts.Log.Warn("stored model shadowed by a local model file of the same name", "model", m.ID())
			continue
		}
		if c.served[name].origin == storeOrigin(m) {
			continue
		}
		src, err := c.storedSource(m)
		if err != nil {
			c.opts.Log.Error("skipping stored model", "model", m.ID(), "error", err)
			continue
		}
		if c.register(src) {
			c.opts.Log.Info("serving stored model", "model", m.ID())
		}
	}
	return nil
}

// register adds src to the registry and records it; c.mu is held.
func (c *Catalog) register(src sched.Source) bool {
	if err := c.opts.Registry.Add(src); err != nil {
		c.opts.Log.Error("skipping model", "origin", src.Origin, "error", err)
		return false
	}
	c.served[src.Descriptor.Name] = served{origin: src.Origin, version: src.Descriptor.Version}
	return true
}

// AddStored serves a model version that was just pulled or imported into
// the store (replacing what is served under its name, unless a local file
// shadows it) and loads it when its backend is ready.
func (c *Catalog) AddStored(ctx context.Context, m *modelstore.Manifest) error {
	src, err := c.storedSource(*m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if s, ok := c.served[m.Name]; ok && isFile(s.origin) {
		c.mu.Unlock()
		return fmt.Errorf("%w: model %s is served from the local file %s, which shadows the stored version %s",
			ErrShadowed, m.Name, s.origin[len("file:"):], m.Version)
	}
	if err := c.opts.Registry.Add(src); err != nil {
		c.mu.Unlock()
		return err
	}
	c.served[m.Name] = served{origin: src.Origin, version: m.Version}
	c.mu.Unlock()
	if err := c.opts.Registry.Load(ctx, m.Name); err != nil && !errors.Is(err, sched.ErrUnavailable) {
		return err
	}
	return nil
}

func isFile(origin string) bool { return len(origin) > 5 && origin[:5] == "file:" }

func storeOrigin(m modelstore.Manifest) string { return "store:" + m.ID() }

// scanLocal describes every model file in the models folder. A missing
// folder is empty (the API says how to add models).
func (c *Catalog) scanLocal() (map[string]sched.Source, error) {
	dir := c.opts.ModelsDir
	out := map[string]sched.Source{}
	if dir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		c.opts.Log.Warn("models folder does not exist", "dir", dir)
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("models folder: %w", err)
	}
	for _, e := range entries {
		format, ok := FormatForFile(e.Name())
		if e.IsDir() || !ok {
			continue
		}
		path := filepath.Join(dir, e.Name())
		src, err := c.localSource(path, format)
		if err != nil {
			c.opts.Log.Error("skipping model", "file", path, "error", err)
			continue
		}
		name := src.Descriptor.Name
		if prev, dup := out[name]; dup {
			c.opts.Log.Error("skipping model: another file has the same name", "file", path, "model", name, "other", prev.Origin)
			continue
		}
		out[name] = src
	}
	return out, nil
}

// localSource describes a plain model file (LocalDescriptor, validated).
func (c *Catalog) localSource(path, format string) (sched.Source, error) {
	desc, err := LocalDescriptor(path, format)
	if err != nil {
		return sched.Source{}, err
	}
	if err := desc.Validate(); err != nil {
		return sched.Source{}, err
	}
	b, err := c.backendFor(desc)
	if err != nil {
		return sched.Source{}, err
	}
	return sched.Source{
		Descriptor: desc,
		Backend:    b,
		Origin:     "file:" + path,
		Open:       func(context.Context) ([]byte, error) { return os.ReadFile(path) },
	}, nil
}

// latestStored returns the latest stored version of every model.
func (c *Catalog) latestStored() (map[string]modelstore.Manifest, error) {
	out := map[string]modelstore.Manifest{}
	if c.opts.Store == nil {
		return out, nil
	}
	all, err := c.opts.Store.List()
	if err != nil {
		return out, fmt.Errorf("stored models: %w", err)
	}
	for _, m := range all { // sorted by name, then version
		out[m.Name] = m
	}
	return out, nil
}

// LocalDescriptor returns the descriptor a plain model file of the given
// format (FormatForFile) is served with: its sidecar descriptor when there
// is one, else a name from the file name; the backend fills the rest from
// the model itself. It is not validated.
func LocalDescriptor(path, format string) (model.Descriptor, error) {
	desc, err := model.ReadSidecar(path)
	if err != nil {
		return model.Descriptor{}, err
	}
	if desc == nil {
		desc = &model.Descriptor{}
	}
	if desc.Name == "" {
		desc.Name = model.NameFromFile(path)
	}
	if desc.Format == "" {
		desc.Format = format
	}
	return *desc, nil
}

// StoredDescriptor returns the descriptor a stored model is served with: the
// container's, named after the store entry, onnx when no format is given.
func StoredDescriptor(m *modelstore.Manifest) model.Descriptor {
	d := m.Descriptor
	d.Name, d.Version = m.Name, m.Version
	if d.Format == "" {
		d.Format = model.FormatONNX
	}
	return d
}

// storedSource describes a stored model; its bytes are verified and
// decrypted in memory at every load.
func (c *Catalog) storedSource(m modelstore.Manifest) (sched.Source, error) {
	desc := StoredDescriptor(&m)
	b, err := c.backendFor(desc)
	if err != nil {
		return sched.Source{}, fmt.Errorf("model %s: %w", m.ID(), err)
	}
	st, keys := c.opts.Store, c.opts.Keys
	name, version := m.Name, m.Version
	return sched.Source{
		Descriptor: desc,
		Backend:    b,
		Origin:     storeOrigin(m),
		Open: func(context.Context) ([]byte, error) {
			md, err := st.Load(name, version, keys)
			if err != nil {
				return nil, err
			}
			return md.Bytes, nil
		},
	}, nil
}

// backendFor returns the backend that serves a model's bytes: the backend
// of its format (a stored or local model is one artifact).
func (c *Catalog) backendFor(d model.Descriptor) (string, error) { return BackendFor(d.Format) }

// Choose returns which of a published version's artifacts this daemon
// should fetch and serve, for the backends it runs now (see Select).
func (c *Catalog) Choose(arts []model.Artifact) (model.Artifact, string, error) {
	return Select(arts, c.opts.Targets())
}
