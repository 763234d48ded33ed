package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

// doctorEnv is a small installation in a temp folder: the built plugins with
// their checksums, the ONNX Runtime library, a models folder with one model,
// a config file, and the environment that points the azaion CLI at them.
type doctorEnv struct {
	dir, plugins, lib, config string
	env                       []string
}

func newDoctorEnv(t *testing.T) *doctorEnv {
	t.Helper()
	e := &doctorEnv{dir: t.TempDir()}
	e.plugins = filepath.Join(e.dir, "plugins")
	models := filepath.Join(e.dir, "models")
	for _, d := range []string{e.plugins, models} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"plugins/onnx/cmd/azaion-plugin-onnx", "plugins/trainer/cmd/azaion-plugin-trainer"} {
		bin := testenv.Binary(t, p)
		for _, f := range []string{bin, bin + ".sha256"} {
			copyFile(t, f, filepath.Join(e.plugins, filepath.Base(f)))
		}
	}
	e.lib = filepath.Join(e.dir, "libonnxruntime.so.1")
	copyFile(t, testenv.ORTLib(t), e.lib)
	if err := os.Symlink(testenv.Model(t, "yolo11n_int8.onnx"), filepath.Join(models, "yolo11n_int8.onnx")); err != nil {
		t.Fatal(err)
	}
	e.config = filepath.Join(e.dir, "azaion.yaml")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	// The socket's group must exist (the package creates azaion).
	writeFile(t, e.config, "onnx: {intra_op_threads: 1}\nsocket: {group: "+grp.Name+"}\n")
	e.env = append(os.Environ(),
		"AZAION_CONFIG="+e.config, "AZAION_PLUGIN_DIR="+e.plugins, "AZAION_ORT_LIB="+e.lib,
		"AZAION_MODELS_DIR="+models, "AZAION_STATE_DIR="+filepath.Join(e.dir, "state"),
		"AZAION_DATA_DIR="+filepath.Join(e.dir, "data"), "AZAION_SOCKET="+filepath.Join(e.dir, "azaion.sock"))
	return e
}

// doctor runs `azaion doctor --json` and returns its findings by check and
// whether it exited 0.
func (e *doctorEnv) doctor(t *testing.T) (map[string]finding, bool) {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t, "daemon/cmd/azaion"), "doctor", "--json", "--user", me.Username, "--unit", "/nonexistent")
	cmd.Env = e.env
	out, err := cmd.Output()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	var r doctorReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	if r.OK != (err == nil) {
		t.Errorf("doctor says ok=%v but exited with %v", r.OK, err)
	}
	byCheck := map[string]finding{}
	for _, f := range r.Checks {
		byCheck[f.Check] = f
	}
	return byCheck, err == nil
}

// TestDoctor: doctor passes on a good installation (loading its model in
// the started plugin) and fails with the right line, and a remedy, for a
// tampered plugin, a missing runtime library and a bad config.
func TestDoctor(t *testing.T) {
	e := newDoctorEnv(t)
	got, ok := e.doctor(t)
	if !ok {
		t.Fatalf("doctor failed on a good installation: %+v", got)
	}
	for _, check := range []string{"config", "plugin onnx checksum", "onnx runtime library", "plugin onnx start",
		"model yolo11n_int8", "plugin trainer checksum", "plugin trainer start", "accelerators", "space state"} {
		if got[check].Verdict != verdictOK {
			t.Errorf("check %q: %+v, want ok", check, got[check])
		}
	}
	if d := got["plugin onnx start"].Detail; !strings.Contains(d, "onnxruntime 1.30.0") || !strings.Contains(d, "backend/v1") {
		t.Errorf("plugin onnx start does not name its runtime and API: %s", d)
	}
	if got["socket"].Verdict != verdictWarn || !strings.Contains(got["socket"].Detail, "not running") {
		t.Errorf("socket without a daemon: %+v, want a warning that it is not running", got["socket"])
	}

	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, e *doctorEnv)
		check  string
		detail string
		remedy string
	}{
		{"tampered plugin", func(t *testing.T, e *doctorEnv) {
			f, err := os.OpenFile(filepath.Join(e.plugins, "azaion-plugin-onnx"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("tampered"))
			f.Close()
		}, "plugin onnx checksum", "does not match its checksum", "reinstall"},
		{"missing runtime library", func(t *testing.T, e *doctorEnv) {
			if err := os.Remove(e.lib); err != nil {
				t.Fatal(err)
			}
		}, "onnx runtime library", "no such file", "AZAION_ORT_LIB"},
		{"plugin without its runtime", func(t *testing.T, e *doctorEnv) {
			if err := os.Remove(e.lib); err != nil {
				t.Fatal(err)
			}
		}, "plugin onnx start", "libonnxruntime.so.1: cannot open shared object file", "reinstall"},
		{"bad config", func(t *testing.T, e *doctorEnv) {
			writeFile(t, e.config, "limits: {queue_size: -1}\n")
		}, "config", "limits.queue_size", "fix the key"},
		{"unknown config key", func(t *testing.T, e *doctorEnv) {
			writeFile(t, e.config, "onnx: {thread: 2}\n")
		}, "config", "thread", "fix the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDoctorEnv(t)
			tc.break_(t, e)
			got, ok := e.doctor(t)
			if ok {
				t.Fatal("doctor passed")
			}
			f := got[tc.check]
			if f.Verdict != verdictFail || !strings.Contains(f.Detail, tc.detail) || !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("check %q: %+v\nwant fail, detail with %q, remedy with %q", tc.check, f, tc.detail, tc.remedy)
			}
		})
	}
}

// TestDoctorText: one line per check, verdict first, the remedy after "->".
func TestDoctorText(t *testing.T) {
	e := newDoctorEnv(t)
	if err := os.Remove(e.lib); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t, "daemon/cmd/azaion"), "doctor", "--user", "root", "--unit", "/nonexistent")
	cmd.Env = e.env
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("doctor with a missing library: %v, want exit status 1\n%s", err, out)
	}
	var lib string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		verdict := strings.Fields(l)[0]
		if verdict != "OK" && verdict != "WARN" && verdict != "FAIL" && verdict != "SKIP" {
			t.Errorf("line without a verdict: %q", l)
		}
		if strings.Contains(l, "onnx runtime library") {
			lib = l
		}
	}
	if !strings.HasPrefix(lib, "FAIL") || !strings.Contains(lib, e.lib) || !strings.Contains(lib, "-> reinstall") {
		t.Errorf("runtime library line: %q", lib)
	}
}

// TestVersion: the daemon's version, and each plugin's with its runtime's.
func TestVersion(t *testing.T) {
	e := newDoctorEnv(t)
	cmd := exec.Command(testenv.Binary(t, "daemon/cmd/azaion"), "version", "--json")
	cmd.Env = e.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if v.Daemon == "" || !strings.HasPrefix(v.Go, "go") || len(v.Plugins) != 2 {
		t.Fatalf("version: %+v", v)
	}
	for _, p := range v.Plugins {
		if p.Error != "" || p.Version == "" || len(p.APIVersions) == 0 {
			t.Errorf("plugin %+v", p)
		}
		if p.Name == "onnx" && !strings.Contains(p.Version, "onnxruntime 1.30.0") {
			t.Errorf("onnx plugin version %q does not name its runtime", p.Version)
		}
	}
	// Without its runtime library the ONNX plugin cannot say: exit 1, and why.
	if err := os.Remove(e.lib); err != nil {
		t.Fatal(err)
	}
	text := exec.Command(testenv.Binary(t, "daemon/cmd/azaion"), "version")
	text.Env = e.env
	out, err = text.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plugin onnx: ") || !strings.Contains(string(out), "libonnxruntime.so.1") {
		t.Errorf("version without the runtime: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorNetworkAndSocket: the API, CDN and broker checks pass against
// servers that answer and fail, with a remedy, against closed ports; the
// socket check passes for a socket with the configured mode that answers and
// fails for a wrong mode.
func TestDoctorNetworkAndSocket(t *testing.T) {
	api := httptest.NewTLSServer(http.NotFoundHandler())
	defer api.Close()
	cdn := httptest.NewServer(http.NotFoundHandler())
	defer cdn.Close()
	broker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	go func() {
		for {
			c, err := broker.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	e := newDoctorEnv(t)
	ca := filepath.Join(e.dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})))
	base, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.dir, "azaion.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}

	configure := func(apiURL, cdnURL, brokerAddr string) {
		writeFile(t, e.config, string(base)+fmt.Sprintf("api: {url: %q, ca_file: %q}\ncdn: {endpoint: %q}\ningest: {uri: %q}\n",
			apiURL, ca, cdnURL, "rabbitmq-stream://azaion@"+brokerAddr+"/%2f"))
	}
	configure(api.URL, cdn.URL, broker.Addr().String())
	got, ok := e.doctor(t)
	if !ok {
		t.Fatalf("doctor fails with reachable servers: %+v", got)
	}
	for _, check := range []string{"api", "cdn", "broker", "socket"} {
		if got[check].Verdict != verdictOK {
			t.Errorf("%s: %+v, want ok", check, got[check])
		}
	}
	if !strings.Contains(got["socket"].Detail, "answers") {
		t.Errorf("socket: %+v", got["socket"])
	}

	closed := testenv.FreeTCPAddr(t)
	configure("https://"+closed, "http://"+closed, closed)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	got, ok = e.doctor(t)
	if ok {
		t.Fatal("doctor passes with unreachable servers and a world-writable socket")
	}
	for check, want := range map[string]string{"api": "does not answer", "cdn": "does not answer", "broker": "does not answer",
		"socket": "mode 0666, want 0660"} {
		if f := got[check]; f.Verdict != verdictFail || !strings.Contains(f.Detail, want) || f.Remedy == "" {
			t.Errorf("%s: %+v, want fail with %q and a remedy", check, f, want)
		}
	}
	if strings.Contains(fmt.Sprint(got["broker"]), "azaion@") {
		t.Errorf("the broker line shows the URI's user: %+v", got["broker"])
	}
}
