package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/pluginconfig"
)

const reinstall = "reinstall the package: apt-get install --reinstall azaion"

// serviceUser is the account the service runs as, with the groups it gets
// (its own memberships plus the unit's SupplementaryGroups).
type serviceUser struct {
	name   string
	uid    int
	gid    int
	groups map[int]string // gid -> name
	err    error
}

func lookupServiceUser(name, unit string) serviceUser {
	s := serviceUser{name: name, uid: -1, gid: -1, groups: map[int]string{}}
	u, err := user.Lookup(name)
	if err != nil {
		s.err = err
		return s
	}
	s.uid, _ = strconv.Atoi(u.Uid)
	s.gid, _ = strconv.Atoi(u.Gid)
	ids, _ := u.GroupIds()
	ids = append(ids, u.Gid)
	for _, g := range append(ids, unitGroups(unit)...) {
		grp, err := user.LookupGroupId(g)
		if err != nil {
			if grp, err = user.LookupGroup(g); err != nil {
				continue // a supplementary group this machine lacks
			}
		}
		id, _ := strconv.Atoi(grp.Gid)
		s.groups[id] = grp.Name
	}
	return s
}

// unitGroups returns the SupplementaryGroups= of a systemd unit file.
func unitGroups(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SupplementaryGroups="); ok {
			out = append(out, strings.Fields(v)...)
		}
	}
	return out
}

func (s serviceUser) ok() bool { return s.err == nil }

func (s serviceUser) groupNames() []string {
	var names []string
	for _, n := range s.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s serviceUser) finding(cfg *config.Config) finding {
	if !s.ok() {
		return finding{"service user", verdictWarn, fmt.Sprintf("user %s: %v", s.name, s.err),
			"the package's postinst creates it (apt-get install --reinstall azaion); elsewhere pass --user"}
	}
	f := finding{"service user", verdictOK, fmt.Sprintf("%s (uid %d), groups %s", s.name, s.uid, strings.Join(s.groupNames(), " ")), ""}
	if g := cfg.Socket.Group; g != "" && cfg.Socket.Path != "" {
		if _, err := user.LookupGroup(g); err != nil {
			f.Verdict, f.Detail = verdictFail, fmt.Sprintf("socket.group %s does not exist: the socket would be usable by root only", g)
			f.Remedy = "addgroup --system " + g + " (the package's postinst creates azaion), then: systemctl restart azaion"
		}
	}
	return f
}

// canAccess reports whether the service user may read (and write, if rw)
// a file with this owner, group and mode.
func (s serviceUser) canAccess(st os.FileInfo, rw bool) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !s.ok() {
		return false
	}
	if s.uid == 0 {
		return true
	}
	perm := st.Mode().Perm()
	var bits os.FileMode
	switch {
	case int(sys.Uid) == s.uid:
		bits = perm >> 6
	case s.groups[int(sys.Gid)] != "":
		bits = perm >> 3
	default:
		bits = perm
	}
	want := os.FileMode(4)
	if rw {
		want = 6
	}
	return bits&want == want
}

// owner describes a file's owner, group and mode ("root:render 0660").
func owner(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return st.Mode().Perm().String()
	}
	u, g := strconv.Itoa(int(sys.Uid)), strconv.Itoa(int(sys.Gid))
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return fmt.Sprintf("%s:%s %04o", u, g, st.Mode().Perm())
}

// checkPlugins checks each plugin's binary against its checksum, the ONNX
// Runtime library, starts each plugin as the daemon does and, in the ONNX
// plugin, loads every model the daemon would serve.
func checkPlugins(ctx context.Context, cfg *config.Config, timeout time.Duration) []finding {
	var out []finding
	for _, pp := range probes(cfg) {
		name := "plugin " + pp.name
		if _, err := os.Stat(pp.path); err != nil {
			if pp.enabled {
				out = append(out, finding{name + " binary", verdictFail, err.Error(), reinstall + " (or set paths.plugins)"})
				if pp.name == catalog.BackendONNX {
					out = append(out, finding{"models", verdictSkip, "cannot be loaded: the onnx plugin is missing", ""})
				}
			}
			continue
		}
		sumOK := true
		if f := checkChecksum(pp.path); f.Verdict != verdictOK {
			out, sumOK = append(out, f), false
		} else {
			out = append(out, f)
		}
		if pp.name == catalog.BackendONNX {
			out = append(out, checkORTLibrary(cfg.ONNX.Library))
		}
		if !sumOK {
			out = append(out, finding{name + " start", verdictSkip, "not started: its checksum does not match", ""})
			if pp.name == catalog.BackendONNX {
				out = append(out, finding{"models", verdictSkip, "cannot be loaded: the onnx plugin does not start", ""})
			}
			continue
		}
		var models []finding
		var use func(ctx context.Context, f *pluginFacts) error
		if pp.name == catalog.BackendONNX {
			use = func(ctx context.Context, f *pluginFacts) error {
				models = checkModels(ctx, cfg, f)
				return nil
			}
		}
		facts, err := pp.probe(ctx, timeout, use)
		switch {
		case err != nil:
			remedy := "see the reason above; " + reinstall
			if pp.name == catalog.BackendONNX {
				remedy = "see the reason above: a missing runtime library or OpenCV library is named there; " + reinstall
			}
			out = append(out, finding{name + " start", verdictFail, "does not start: " + err.Error(), remedy})
			if pp.name == catalog.BackendONNX {
				out = append(out, finding{"models", verdictSkip, "cannot be loaded: the onnx plugin does not start", ""})
			}
		default:
			detail := "starts: " + facts.Version + ", API " + strings.Join(facts.APIVersions, " ")
			if len(facts.Devices) > 0 {
				detail += "; devices: " + strings.Join(facts.Devices, ", ")
			}
			if len(facts.Providers) > 0 {
				detail += "; providers: " + strings.Join(facts.Providers, " ")
			}
			if !pp.enabled {
				detail += " (disabled in the configuration)"
			}
			out = append(out, finding{name + " start", verdictOK, detail, ""})
			out = append(out, models...)
		}
	}
	return out
}

// checkChecksum compares a plugin binary with its .sha256 file.
func checkChecksum(path string) finding {
	check := "plugin " + strings.TrimPrefix(filepath.Base(path), "azaion-plugin-") + " checksum"
	b, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return finding{check, verdictFail, err.Error() + ": the daemon refuses an unverified plugin", reinstall}
	}
	want := strings.Fields(string(b))
	got, err := pluginmgr.FileSHA256(path)
	if err != nil {
		return finding{check, verdictFail, err.Error(), reinstall}
	}
	if len(want) == 0 || !strings.EqualFold(want[0], got) {
		w := "(empty)"
		if len(want) > 0 {
			w = want[0]
		}
		return finding{check, verdictFail, fmt.Sprintf("%s does not match its checksum: it is %s, %s.sha256 says %s; the daemon will not launch it", path, got, filepath.Base(path), w),
			"the file was changed or damaged: " + reinstall}
	}
	return finding{check, verdictOK, path + " matches " + filepath.Base(path) + ".sha256", ""}
}

// checkORTLibrary checks that the ONNX Runtime library is there and built
// for this machine.
func checkORTLibrary(path string) finding {
	const check = "onnx runtime library"
	remedy := reinstall + " (it ships the library), or point onnx.library / AZAION_ORT_LIB at one"
	f, err := elf.Open(path)
	if err != nil {
		return finding{check, verdictFail, fmt.Sprintf("%s: %v", path, err), remedy}
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if want != 0 && f.Machine != want {
		return finding{check, verdictFail, fmt.Sprintf("%s is built for %s, this machine is %s", path, f.Machine, runtime.GOARCH), remedy}
	}
	return finding{check, verdictOK, fmt.Sprintf("%s (%s)", path, f.Machine), ""}
}

// modelSource is a model the daemon would serve.
type modelSource struct {
	name, origin string
	desc         model.Descriptor
	open         func(ctx context.Context) ([]byte, error)
}

// checkModels loads every model the daemon would serve (the local models
// folder and the latest version of each stored model) into the started ONNX
// plugin, and unloads it.
func checkModels(ctx context.Context, cfg *config.Config, f *pluginFacts) []finding {
	var out []finding
	srcs, errs := modelSources(cfg)
	out = append(out, errs...)
	if len(srcs) == 0 && len(errs) == 0 {
		return append(out, finding{"models", verdictWarn, "none: the daemon has nothing to serve",
			fmt.Sprintf("copy a YOLO .onnx file into %s (readable by the service user) or run `azaion models pull NAME`, then: systemctl reload azaion", cfg.Paths.Models)})
	}
	for _, s := range srcs {
		check := "model " + s.name
		if s.desc.Format != model.FormatONNX {
			out = append(out, finding{check, verdictSkip, fmt.Sprintf("%s: format %s needs another backend", s.origin, s.desc.Format), ""})
			continue
		}
		data, err := s.open(ctx)
		if err != nil {
			out = append(out, finding{check, verdictFail, fmt.Sprintf("%s: %v", s.origin, err), "replace it (copy the file again, or `azaion models pull`); run doctor as root to read the model store"})
			continue
		}
		start := time.Now()
		res, err := f.Backend.Load(ctx, s.desc, data)
		if err != nil {
			out = append(out, finding{check, verdictFail, fmt.Sprintf("%s does not load: %v", s.origin, err), "replace the model file or pull it again"})
			continue
		}
		_ = f.Backend.Unload(ctx, res.Handle)
		d := res.Descriptor
		out = append(out, finding{check, verdictOK, fmt.Sprintf("%s loads: %dx%d, %d classes, %s, ready in %s", s.origin,
			d.InputWidth, d.InputHeight, len(d.Classes), d.Output, time.Since(start).Round(time.Millisecond)), ""})
	}
	return out
}

// modelSources lists the models the daemon would serve, without creating
// anything (the store and its local key are only read).
func modelSources(cfg *config.Config) ([]modelSource, []finding) {
	var srcs []modelSource
	var bad []finding
	entries, err := os.ReadDir(cfg.Paths.Models)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		bad = append(bad, finding{"models folder", verdictFail, err.Error(), "make it readable by the service user"})
	}
	for _, e := range entries {
		format, ok := catalog.FormatForFile(e.Name())
		if e.IsDir() || !ok {
			continue
		}
		path := filepath.Join(cfg.Paths.Models, e.Name())
		desc, err := catalog.LocalDescriptor(path, format)
		if err != nil {
			bad = append(bad, finding{"model " + model.NameFromFile(path), verdictFail, err.Error(), "fix or remove the sidecar .yaml"})
			continue
		}
		srcs = append(srcs, modelSource{name: desc.Name, origin: path, desc: desc,
			open: func(context.Context) ([]byte, error) { return os.ReadFile(path) }})
	}
	storeDir := distribution.StoreDir(cfg)
	if _, err := os.Stat(storeDir); err != nil {
		return srcs, bad
	}
	svc, err := distribution.FromConfig(cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return srcs, append(bad, finding{"model store", verdictFail, err.Error(), "run doctor as root"})
	}
	all, err := svc.Store.List()
	if err != nil {
		return srcs, append(bad, finding{"model store", verdictFail, err.Error(), "run doctor as root"})
	}
	latest := map[string]modelstore.Manifest{}
	for _, m := range all {
		latest[m.Name] = m
	}
	names := make([]string, 0, len(latest))
	for n := range latest {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := latest[n]
		if slices.ContainsFunc(srcs, func(s modelSource) bool { return s.name == n }) {
			continue // a local file of the same name wins, as in the daemon
		}
		if m.Key == modelstore.KeyLocal {
			if _, err := os.Stat(distribution.LocalKeyFile(cfg)); err != nil {
				bad = append(bad, finding{"model " + n, verdictFail, fmt.Sprintf("store %s: its local key is missing: %v", m.ID(), err),
					"import the model again (`azaion models import`) as the service user"})
				continue
			}
		}
		st, keys := svc.Store, svc.Keys
		srcs = append(srcs, modelSource{name: n, origin: "store " + m.ID(), desc: catalog.StoredDescriptor(&m),
			open: func(context.Context) ([]byte, error) {
				md, err := st.Load(m.Name, m.Version, keys)
				if err != nil {
					return nil, err
				}
				return md.Bytes, nil
			}})
	}
	return srcs, bad
}

// accelerator device nodes the service may use (DeviceAllow= in the unit).
var devicePatterns = []string{"/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/card*", "/dev/dri/renderD*", "/dev/rknpu", "/dev/dma_heap/*", "/dev/rga"}

// checkAccelerators lists the GPU and NPU device nodes and whether the
// service user may use them.
func checkAccelerators(cfg *config.Config, svc serviceUser) []finding {
	var out []finding
	var found []string
	for _, p := range devicePatterns {
		m, _ := filepath.Glob(p)
		found = append(found, m...)
	}
	sort.Strings(found)
	nvidia := false
	for _, dev := range found {
		st, err := os.Stat(dev)
		if err != nil || st.Mode()&os.ModeCharDevice == 0 {
			continue
		}
		nvidia = nvidia || strings.HasPrefix(dev, "/dev/nvidia")
		check := "device " + dev
		switch {
		case !svc.ok():
			out = append(out, finding{check, verdictSkip, owner(st) + "; access not checked: no service user", ""})
		case svc.canAccess(st, true):
			out = append(out, finding{check, verdictOK, fmt.Sprintf("%s, usable by %s", owner(st), svc.name), ""})
		default:
			grp := strings.Fields(owner(st))[0]
			grp = grp[strings.Index(grp, ":")+1:]
			out = append(out, finding{check, verdictFail, fmt.Sprintf("%s: %s may not open it", owner(st), svc.name),
				fmt.Sprintf("adduser %s %s, then: systemctl restart azaion", svc.name, grp)})
		}
	}
	wantsGPU := slices.ContainsFunc(cfg.ONNX.Providers, func(p string) bool { return p == pluginconfig.ProviderCUDA || p == pluginconfig.ProviderTensorRT })
	switch {
	case wantsGPU && !nvidia && !cfg.ONNX.FallbackCPU:
		out = append(out, finding{"accelerators", verdictFail, "onnx.providers asks for " + strings.Join(cfg.ONNX.Providers, ",") + " but no NVIDIA device node is present",
			"install the NVIDIA driver, or set onnx.providers: [cpu] (or onnx.fallback_cpu: true)"})
	case len(out) == 0:
		out = append(out, finding{"accelerators", verdictOK, "none found: inference runs on the CPU", ""})
	}
	return out
}

// checkState checks the state folder: present, owned by the service user,
// not open to others, and nothing under its store or keys that the service
// cannot read (a `models import` run as root leaves such files).
func checkState(cfg *config.Config, svc serviceUser) []finding {
	dir := cfg.Paths.State
	st, err := os.Stat(dir)
	if err != nil {
		return []finding{{"state folder", verdictWarn, err.Error(), "the service creates it at start (StateDirectory=azaion)"}}
	}
	if !svc.ok() {
		return []finding{{"state folder", verdictOK, dir + " (" + owner(st) + ")", ""}}
	}
	chown := fmt.Sprintf("chown -R %s:%s %s", svc.name, svc.name, dir)
	if st.Mode().Perm()&0o007 != 0 {
		return []finding{{"state folder", verdictFail, fmt.Sprintf("%s (%s) is open to all users", dir, owner(st)), "chmod 0750 " + dir}}
	}
	var foreign []string
	for _, sub := range []string{"models", "keys"} {
		_ = filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(foreign) >= 3 {
				return nil
			}
			info, err := d.Info()
			if err == nil && !svc.canAccess(info, d.IsDir()) {
				foreign = append(foreign, p+" ("+owner(info)+")")
			}
			return nil
		})
	}
	if !svc.canAccess(st, true) {
		foreign = append([]string{dir + " (" + owner(st) + ")"}, foreign...)
	}
	if len(foreign) > 0 {
		return []finding{{"state folder", verdictFail, svc.name + " cannot use " + strings.Join(foreign, ", "),
			chown + " (run `azaion models import|pull` as the service user: sudo -u " + svc.name + " azaion ...)"}}
	}
	return []finding{{"state folder", verdictOK, dir + " (" + owner(st) + ")", ""}}
}

// checkNetwork checks that the API, the CDN and the broker answer, for those
// configured. Any HTTP answer counts: reachability, not credentials.
func checkNetwork(ctx context.Context, cfg *config.Config) []finding {
	var out []finding
	if cfg.API.URL == "" {
		out = append(out, finding{"api", verdictSkip, "not configured (api.url)", ""})
	} else {
		out = append(out, checkHTTP(ctx, "api", cfg.API.URL, cfg.API.CAFile))
	}
	if cfg.CDN.Endpoint == "" {
		out = append(out, finding{"cdn", verdictSkip, "not configured (cdn.endpoint)", ""})
	} else {
		out = append(out, checkHTTP(ctx, "cdn", cfg.CDN.Endpoint, cfg.CDN.CAFile))
	}
	broker := cfg.Ingest.Broker.Reveal()
	if broker == "" {
		out = append(out, finding{"broker", verdictSkip, "not configured (ingest.uri, ingest.uri_file or AZAION_STREAM_URI)", ""})
	} else {
		out = append(out, checkBroker(ctx, broker))
	}
	return out
}

func checkHTTP(ctx context.Context, check, rawURL, caFile string) finding {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return finding{check, verdictFail, err.Error(), "fix " + check + ".ca_file"}
		}
		pool.AppendCertsFromPEM(pem)
		tc.RootCAs = pool
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return finding{check, verdictFail, err.Error(), "fix " + check + " URL in the configuration"}
	}
	resp, err := c.Do(req)
	if err != nil {
		return finding{check, verdictFail, fmt.Sprintf("%s does not answer: %v", rawURL, err),
			"check the network, DNS, firewall and proxy; a cached model still serves while it is down"}
	}
	resp.Body.Close()
	return finding{check, verdictOK, fmt.Sprintf("%s answers (HTTP %d)", rawURL, resp.StatusCode), ""}
}

// checkBroker dials the RabbitMQ stream port; the URI's credentials are never shown.
func checkBroker(ctx context.Context, uri string) finding {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return finding{"broker", verdictFail, "the broker URI is not a URI", "fix ingest.uri / ingest.uri_file / AZAION_STREAM_URI"}
	}
	port := u.Port()
	if port == "" {
		port = "5552"
		if u.Scheme == "rabbitmq-stream+tls" {
			port = "5551"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return finding{"broker", verdictFail, fmt.Sprintf("%s does not answer: %v", addr, err), "check the broker, the network and the firewall"}
	}
	c.Close()
	return finding{"broker", verdictOK, addr + " accepts connections", ""}
}

// checkSpace reports the free space of the state folder and the data root.
func checkSpace(cfg *config.Config) []finding {
	var out []finding
	seen := map[uint64]bool{}
	for _, p := range []struct{ name, dir string }{{"space state", cfg.Paths.State}, {"space data", cfg.Data.Root}} {
		dir := p.dir
		for dir != "/" {
			if _, err := os.Stat(dir); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		var s syscall.Statfs_t
		if err := syscall.Statfs(dir, &s); err != nil {
			out = append(out, finding{p.name, verdictWarn, fmt.Sprintf("%s: %v", dir, err), ""})
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && seen[st.Dev] {
			continue // same file system as the one above
		}
		seen[st.Dev] = true
		free := s.Bavail * uint64(s.Bsize)
		total := s.Blocks * uint64(s.Bsize)
		detail := fmt.Sprintf("%s: %s free of %s", p.dir, gib(free), gib(total))
		switch {
		case free < 512<<20:
			out = append(out, finding{p.name, verdictFail, detail, "free some space: models, data and logs need room"})
		case free < 2<<30:
			out = append(out, finding{p.name, verdictWarn, detail, "free some space soon"})
		default:
			out = append(out, finding{p.name, verdictOK, detail, ""})
		}
	}
	return out
}

func gib(n uint64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// checkSocket checks the Unix socket: a socket, owned by the service user
// and the configured group with the configured mode, and answering.
func checkSocket(ctx context.Context, cfg *config.Config, svc serviceUser) finding {
	p := cfg.Socket.Path
	if p == "" {
		return finding{"socket", verdictSkip, "disabled (socket.path is empty)", ""}
	}
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return finding{"socket", verdictWarn, p + " is absent: the daemon is not running", "systemctl start azaion; journalctl -u azaion says why it stopped"}
	}
	if err != nil {
		return finding{"socket", verdictFail, err.Error(), ""}
	}
	if st.Mode()&os.ModeSocket == 0 {
		return finding{"socket", verdictFail, p + " is not a socket", "remove it, then: systemctl restart azaion"}
	}
	var problems []string
	if perm := st.Mode().Perm(); perm != os.FileMode(cfg.Socket.Mode) {
		problems = append(problems, fmt.Sprintf("mode %04o, want %04o", perm, cfg.Socket.Mode))
	}
	sys := st.Sys().(*syscall.Stat_t)
	if g := cfg.Socket.Group; g != "" {
		if grp, err := user.LookupGroup(g); err == nil && grp.Gid != strconv.Itoa(int(sys.Gid)) {
			problems = append(problems, "group is not "+g)
		}
	}
	if svc.ok() && int(sys.Uid) != svc.uid {
		problems = append(problems, "owner is not "+svc.name)
	}
	if len(problems) > 0 {
		return finding{"socket", verdictFail, fmt.Sprintf("%s (%s): %s", p, owner(st), strings.Join(problems, ", ")),
			"restart the service (systemctl restart azaion): it makes the socket as configured (socket.mode, socket.group)"}
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", p)
		}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://azaion/healthz", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return finding{"socket", verdictFail, fmt.Sprintf("%s (%s) does not answer: %v", p, owner(st), err), "systemctl restart azaion"}
	}
	resp.Body.Close()
	return finding{"socket", verdictOK, fmt.Sprintf("%s (%s), the daemon answers", p, owner(st)), ""}
}
