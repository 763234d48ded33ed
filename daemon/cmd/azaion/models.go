package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
)

func init() {
	register(&command{Name: "models publish", Summary: "encrypt, split and upload a model (API + CDN)", Run: runModelsPublish})
	register(&command{Name: "models pull", Summary: "fetch a published model into the encrypted local store", Run: runModelsPull})
	register(&command{Name: "models import", Summary: "store a local model file encrypted at rest", Run: runModelsImport})
	register(&command{Name: "models list", Summary: "list the models in the encrypted local store", Run: runModelsList})
}

// modelService loads the config and builds the model service; logs go to
// stderr at warn level unless the config says otherwise.
func modelService(cfgPath string) (*config.Config, *distribution.Service, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := distribution.FromConfig(cfg, "", log)
	if err != nil {
		return nil, nil, err
	}
	// Pulling a bundle here (no daemon): the artifact for the configured
	// backends whose devices need no probing (ONNX).
	var targets []catalog.Target
	if cfg.ONNXEnabled() {
		targets = append(targets, catalog.Target{Backend: catalog.BackendONNX})
	}
	svc.Choose = func(arts []model.Artifact) (model.Artifact, string, error) { return catalog.Select(arts, targets) }
	return cfg, svc, nil
}

// fileDescriptor returns the descriptor of a model file: its sidecar when
// there is one, with name, version and format from the flags or the file.
func fileDescriptor(path, name, version, fallbackName string) (model.Descriptor, error) {
	var d model.Descriptor
	side, err := model.ReadSidecar(path)
	if err != nil {
		return d, err
	}
	if side != nil {
		d = *side
	}
	if name != "" {
		d.Name = name
	}
	if d.Name == "" {
		d.Name = fallbackName
	}
	if version != "" {
		d.Version = version
	}
	if d.Format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".engine", ".plan", ".trt":
			d.Format = model.FormatEngine
		case ".rknn":
			d.Format = model.FormatRKNN
		default:
			d.Format = model.FormatONNX
		}
	}
	return d, d.Validate()
}

func runModelsPublish(ctx context.Context, args []string) error {
	fs := newFlags("models publish")
	name := fs.String("name", "", "model name (required unless the sidecar descriptor has one)")
	version := fs.String("version", "", "model version (required unless the sidecar descriptor has one)")
	cfgPath := fs.String("config", "", "config file (default "+config.DefaultPath+"; env AZAION_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion models publish FILE --name NAME --version VERSION")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, modelsArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one model FILE")
	}
	desc, err := fileDescriptor(fs.Arg(0), *name, *version, "")
	if err != nil {
		return usageErrorf("%v", err)
	}
	if desc.Version == "" {
		return usageErrorf("--version is required")
	}
	_, svc, err := modelService(*cfgPath)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	defer clear(b)
	h, err := svc.Publish(ctx, b, desc)
	if err != nil {
		return err
	}
	fmt.Printf("published %s (%s, sha256 %s): big part %d bytes -> CDN %s, small part -> API %s/%s\n",
		desc.ID(), sizeText(h.PlaintextSize), h.PlaintextSHA256, h.BigSize,
		distribution.BigKey(desc.Name, desc.Version), distribution.Folder, distribution.SmallName(desc.Name, desc.Version))
	return nil
}

func runModelsPull(ctx context.Context, args []string) error {
	fs := newFlags("models pull")
	local := fs.Bool("local", false, "pull into the state folder here instead of asking the running daemon")
	socket := fs.String("socket", "", "daemon socket (default $AZAION_SOCKET or "+api.DefaultSocket+")")
	cfgPath := fs.String("config", "", "config file for --local (default "+config.DefaultPath+"; env AZAION_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion models pull NAME[:VERSION]\n\nAsks the running daemon to pull and load the model; "+
			"without a daemon (or with --local) pulls into the state folder.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, modelsArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one model NAME[:VERSION]")
	}
	name, version, err := distribution.ParseRef(fs.Arg(0))
	if err != nil {
		return usageErrorf("%v", err)
	}
	bar := newPullBar(os.Stderr)
	defer bar.done()
	if !*local {
		c := api.FromEnv()
		if *socket != "" {
			c = api.NewSocketClient(*socket)
		}
		err := c.PullModel(ctx, api.ModelPullRequest{Name: name, Version: version}, bar.update)
		if err == nil || !daemonUnreachable(err) {
			return err
		}
		bar.note("daemon not reachable; pulling into the state folder")
	}
	cfg, svc, err := modelService(*cfgPath)
	if err != nil {
		return err
	}
	p, err := svc.Pull(ctx, name, version, bar.update)
	if err != nil {
		return err
	}
	clear(p.Bytes)
	bar.done()
	state := "pulled"
	if p.Cached {
		state = "already stored"
	}
	fmt.Printf("%s %s (%s) in %s\n", state, p.Manifest.ID(), sizeText(p.Manifest.PlaintextSize),
		filepath.Join(distribution.StoreDir(cfg), p.Manifest.Name, p.Manifest.Version))
	return nil
}

// daemonUnreachable tells a daemon that is not running (or too old to pull)
// from an answer of a running one.
func daemonUnreachable(err error) bool {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Status == 404 && se.Code != api.CodeNotFound
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.EACCES)
}

func runModelsImport(ctx context.Context, args []string) error {
	fs := newFlags("models import")
	name := fs.String("name", "", "model name (default: the sidecar's or the file name)")
	version := fs.String("version", "", "model version (default: the sidecar's, else 1)")
	local := fs.Bool("local", false, "write the state folder here instead of asking the running daemon")
	socket := fs.String("socket", "", "daemon socket (default $AZAION_SOCKET or "+api.DefaultSocket+")")
	cfgPath := fs.String("config", "", "config file for --local (default "+config.DefaultPath+"; env AZAION_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion models import FILE [--name NAME] [--version VERSION]\n\n"+
			"Hands the model to the running daemon, which stores it encrypted and serves it at once; "+
			"without a daemon (or with --local) stores it in the state folder, served from the daemon's next start or SIGHUP.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, modelsArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one model FILE")
	}
	path := fs.Arg(0)
	if st, err := os.Stat(path); err != nil {
		return err
	} else if st.IsDir() {
		return usageErrorf("%s is a folder: want a model FILE", path)
	}
	// The name: --name, else the sidecar's, else the file's name.
	desc, err := fileDescriptor(path, *name, *version, model.NameFromFile(path))
	if err != nil {
		return usageErrorf("%v", err)
	}
	if desc.Version == "" {
		desc.Version = "1"
	}
	if !*local {
		c := api.FromEnv()
		if *socket != "" {
			c = api.NewSocketClient(*socket)
		}
		res, err := importThroughDaemon(ctx, c, path, desc)
		if err == nil {
			state := "stored; it is not served"
			if res.Stage == api.PullLoaded {
				state = "served now"
			}
			fmt.Printf("imported %s:%s (%s, sha256 %s) through the running daemon: encrypted at rest in its store, %s\n",
				res.Name, res.Version, sizeText(res.Size), res.SHA256, state)
			return nil
		}
		if !daemonUnreachable(err) {
			return err
		}
		fmt.Fprintf(os.Stderr, "daemon not reachable (%v); importing into the state folder directly\n", err)
	}
	cfg, svc, err := modelService(*cfgPath)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	defer clear(b)
	m, err := svc.Import(b, desc)
	if err != nil {
		return err
	}
	fmt.Printf("imported %s (%s, sha256 %s) into %s, encrypted at rest; the daemon serves it from its next start "+
		"(or SIGHUP)\n", m.ID(), sizeText(m.PlaintextSize), m.PlaintextSHA256,
		filepath.Join(distribution.StoreDir(cfg), m.Name, m.Version))
	return nil
}

// importThroughDaemon uploads the model file to the daemon's
// POST /v1/models/import.
func importThroughDaemon(ctx context.Context, c *api.Client, path string, desc model.Descriptor) (*api.ModelImportResponse, error) {
	js, err := json.Marshal(desc)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.ImportModel(ctx, api.ModelImportRequest{Name: desc.Name, Version: desc.Version, Descriptor: js}, f)
}

func runModelsList(ctx context.Context, args []string) error {
	fs := newFlags("models list")
	cfgPath := fs.String("config", "", "config file (default "+config.DefaultPath+"; env AZAION_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	st, err := modelstore.Open(distribution.StoreDir(cfg))
	if err != nil {
		return err
	}
	list, err := st.List()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Printf("no models in %s: run `azaion models pull NAME` or `azaion models import FILE`\n", st.Root())
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tFORMAT\tSIZE\tSOURCE\tSTORED")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Version, catalog.StoredDescriptor(&m).Format,
			sizeText(m.PlaintextSize), m.Source, m.Stored.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// modelsArgs moves flags after positional arguments to the front, so that
// `azaion models publish FILE --name N` works like `--name N FILE`.
func modelsArgs(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !modelsBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func modelsBoolFlag(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "local", "h", "help":
		return true
	}
	return false
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// pullBar draws pull progress on a terminal (one redrawn line) or, when
// stderr is not a terminal, prints each stage once.
type pullBar struct {
	w     io.Writer
	tty   bool
	stage string
	drawn time.Time
	open  bool
}

func newPullBar(f *os.File) *pullBar {
	st, err := f.Stat()
	return &pullBar{w: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

var pullStageText = map[string]string{
	api.PullResolving: "resolving the latest version",
	api.PullSmall:     "small part (API)",
	api.PullBig:       "big part (CDN)",
	api.PullVerifying: "verifying and decrypting in memory",
	api.PullStored:    "stored encrypted",
	api.PullCached:    "already in the local store",
	api.PullLoaded:    "loaded",
	api.PullDiscarded: "the stored copy failed verification; discarded it, pulling again",
}

func (b *pullBar) update(p api.ModelPullProgress) {
	if p.Stage == api.PullFailed {
		b.done()
		return
	}
	if p.Stage == api.PullBig && b.tty && p.Total > 0 {
		if p.Completed < p.Total && time.Since(b.drawn) < 100*time.Millisecond {
			return
		}
		b.drawn = time.Now()
		const width = 30
		fill := int(float64(width) * float64(p.Completed) / float64(p.Total))
		fmt.Fprintf(b.w, "\r%s:%s big part [%s%s] %3d%% %s / %s ", p.Name, p.Version, strings.Repeat("#", fill),
			strings.Repeat(".", width-fill), p.Completed*100/p.Total, sizeText(p.Completed), sizeText(p.Total))
		b.open, b.stage = true, p.Stage
		return
	}
	if p.Stage == b.stage {
		return
	}
	b.done()
	b.stage = p.Stage
	if p.Stage == api.PullDiscarded {
		fmt.Fprintf(b.w, "%s:%s %s (%s)\n", p.Name, p.Version, pullStageText[p.Stage], p.Error)
		return
	}
	fmt.Fprintf(b.w, "%s:%s %s\n", p.Name, p.Version, pullStageText[p.Stage])
}

func (b *pullBar) note(s string) {
	b.done()
	fmt.Fprintln(b.w, s)
}

func (b *pullBar) done() {
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}
