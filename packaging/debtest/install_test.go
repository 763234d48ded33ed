package debtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// TestInstall installs the amd64 package with apt into a fresh Debian 12
// root and checks what it made; verifies the unit against that root; starts
// `azaion serve` there as the unit does (user, groups, environment,
// runtime and state folders, Type=notify); gets bus.jpg detections over
// the socket as a member of group azaion and is refused as a non-member;
// runs `azaion doctor` passing, then failing with the right line for a
// tampered plugin, a missing runtime library and a bad config; upgrades to
// a newer build keeping a model and an edited config; removes (state
// kept) and purges (nothing left).
func TestInstall(t *testing.T) {
	debPath, version := deb(t, "amd64")
	deps := depsLayer(t, debPath)
	c := newChroot(t, []string{deps, debianRoot(t)}, map[string]string{aptArchives(t): "/var/cache/apt/archives"})
	c.copyIn(debPath, "/tmp/azaion.deb", 0o644)
	for _, f := range []string{"images/bus.jpg", "yolo11n_int8.onnx", "yolo11n_int8_nms.onnx"} {
		c.copyIn(testenv.Model(t, f), "/tmp/"+filepath.Base(f), 0o644)
	}
	apt := func(t *testing.T, args ...string) string {
		t.Helper()
		unlock := lockCache(t, ".debian-root-apt.lock")
		defer unlock()
		return c.run(t, append([]string{"apt-get", "-y", "-q", "--no-install-recommends"}, args...)...)
	}
	apt(t, "install", "/tmp/azaion.deb")
	if v := c.run(t, "dpkg-query", "-W", "-f=${Status} ${Version}", "azaion"); v != "install ok installed "+version {
		t.Fatalf("dpkg-query: %q", v)
	}

	t.Run("postinst", func(t *testing.T) {
		pw := strings.Split(strings.TrimSpace(c.run(t, "getent", "passwd", "azaion")), ":")
		if uid, _ := strconv.Atoi(pw[2]); len(pw) != 7 || uid >= 1000 || pw[5] != "/var/lib/azaion" || pw[6] != "/usr/sbin/nologin" {
			t.Errorf("user azaion: %v, want a system user with home /var/lib/azaion and no shell", pw)
		}
		if !strings.Contains(c.run(t, "id", "-nG", "azaion"), "azaion") {
			t.Error("azaion is not in group azaion")
		}
		for path, want := range map[string]string{
			"/var/lib/azaion": "azaion:azaion 750", "/var/lib/azaion/models-local": "azaion:azaion 750",
			"/var/lib/azaion/data": "azaion:azaion 750", "/etc/azaion": "root:azaion 750",
			"/etc/azaion/azaion.yaml": "root:azaion 640", "/etc/default/azaion": "root:root 600",
			"/usr/lib/azaion/plugins/azaion-plugin-onnx": "root:root 755",
		} {
			if got := strings.TrimSpace(c.run(t, "stat", "-c", "%U:%G %a", path)); got != want {
				t.Errorf("%s: %s, want %s", path, got, want)
			}
		}
		// Enabled for the next boot; not started (no systemd runs here), and that did not fail the install.
		if l, err := os.Readlink(c.path("/etc/systemd/system/multi-user.target.wants/azaion.service")); err != nil || l != "/lib/systemd/system/azaion.service" {
			t.Errorf("service not enabled: %q %v", l, err)
		}
		if _, err := os.Stat(c.path("/run/azaion")); err == nil {
			t.Error("/run/azaion exists: something started the service in a root without systemd")
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		verify := func(unit string) (string, error) {
			out, err := exec.Command("nsenter", "-t", strconv.Itoa(c.pid), "-m", "--", "systemd-analyze", "verify", "--root="+c.dir, unit).CombinedOutput()
			return string(out), err
		}
		if out, err := verify("azaion.service"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify on the installed root: %v\n%s", err, out)
		}
		// The check has teeth: a unit whose binary is missing fails it.
		c.run(t, "sh", "-c", "sed 's#/usr/bin/azaion#/usr/bin/azaion-missing#' /lib/systemd/system/azaion.service >/etc/systemd/system/broken.service")
		defer c.run(t, "rm", "/etc/systemd/system/broken.service")
		if out, err := verify("broken.service"); err == nil || !strings.Contains(out, "azaion-missing") {
			t.Errorf("verify of a unit with a missing binary: %v\n%s", err, out)
		}
	})

	u := parseUnit(t, c.path("/lib/systemd/system/azaion.service"))
	if u.typ != "notify" || u.user != "azaion" || u.runtimeDirectory != "azaion" || u.stateDirectory != "azaion" || u.watchdogSec == "" {
		t.Fatalf("unit: %+v", u)
	}
	// A model, as an administrator adds one.
	c.run(t, "install", "-o", "azaion", "-g", "azaion", "-m", "0640", "/tmp/yolo11n_int8.onnx", "/var/lib/azaion/models-local/")
	serve := startService(t, c, u)
	c.run(t, "adduser", "--quiet", "--disabled-password", "--gecos", "", "alice")
	c.run(t, "adduser", "--quiet", "alice", "azaion")
	c.run(t, "adduser", "--quiet", "--disabled-password", "--gecos", "", "mallory")

	t.Run("socket access", func(t *testing.T) {
		if got := strings.TrimSpace(c.run(t, "stat", "-c", "%U:%G %a", "/run/azaion/azaion.sock")); got != "azaion:azaion 660" {
			t.Errorf("socket: %s, want azaion:azaion 660", got)
		}
		detectAs(t, c, "alice", "yolo11n_int8")
		out, err := c.try("setpriv", "--reuid=mallory", "--regid=mallory", "--init-groups", "--", "azaion", "detect", "/tmp/bus.jpg")
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("a user outside group azaion: %v\n%s", err, out)
		}
	})

	t.Run("doctor", func(t *testing.T) {
		r, ok := doctor(t, c)
		if !ok {
			t.Fatalf("doctor fails on the installed root:\n%s", r)
		}
		for _, check := range []string{"config", "service user", "plugin onnx checksum", "onnx runtime library", "plugin onnx start",
			"model yolo11n_int8", "plugin trainer checksum", "plugin trainer start", "state folder", "socket"} {
			if !strings.Contains(r, "OK    "+check) {
				t.Errorf("no OK line for %q:\n%s", check, r)
			}
		}
		for _, tc := range []struct {
			name, line     string
			break_, repair []string
		}{
			{"tampered plugin", "FAIL  plugin onnx checksum",
				// A new file renamed over it: the running plugin keeps its own.
				[]string{"sh", "-c", "cd /usr/lib/azaion/plugins && cp -p azaion-plugin-onnx /tmp/plugin.bak && cp -p azaion-plugin-onnx x && printf x >>x && mv x azaion-plugin-onnx"},
				[]string{"sh", "-c", "cd /usr/lib/azaion/plugins && cp -p /tmp/plugin.bak x && mv x azaion-plugin-onnx"}},
			{"missing runtime library", "FAIL  onnx runtime library",
				[]string{"mv", "/usr/lib/azaion/libonnxruntime.so.1", "/tmp/ort.bak"},
				[]string{"mv", "/tmp/ort.bak", "/usr/lib/azaion/libonnxruntime.so.1"}},
			{"bad config", "FAIL  config",
				[]string{"sh", "-c", "cp -p /etc/azaion/azaion.yaml /tmp/cfg.bak && printf 'onnx:\\n  max_batch: 1000\\n' >>/etc/azaion/azaion.yaml"},
				[]string{"cp", "-p", "/tmp/cfg.bak", "/etc/azaion/azaion.yaml"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c.run(t, tc.break_...)
				defer c.run(t, tc.repair...)
				r, ok := doctor(t, c)
				if ok {
					t.Fatalf("doctor passes:\n%s", r)
				}
				var line string
				for _, l := range strings.Split(r, "\n") {
					if strings.HasPrefix(l, tc.line) {
						line = l
					}
				}
				if line == "" || !strings.Contains(line, " -> ") {
					t.Errorf("no %q line with a remedy:\n%s", tc.line, r)
				}
				t.Logf("%s", line)
			})
		}
		if r, ok := doctor(t, c); !ok {
			t.Fatalf("doctor fails after the repairs:\n%s", r)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		// State a user made: an imported model and an edited config.
		c.run(t, "setpriv", "--reuid=azaion", "--regid=azaion", "--init-groups", "--", "azaion", "models", "import", "--name", "kept", "/tmp/yolo11n_int8_nms.onnx")
		c.run(t, "sh", "-c", "printf 'limits:\\n  queue_size: 7\\n' >>/etc/azaion/azaion.yaml")
		edited, _ := os.ReadFile(c.path("/etc/azaion/azaion.yaml"))
		if err := serve.stop(t); err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
		newer := version + "+upgrade"
		c.copyIn(rebuild(t, debPath, newer), "/tmp/azaion-newer.deb", 0o644)
		// From here on the root looks like a system where systemd runs
		// (/run/systemd/system), with systemctl and deb-systemd-invoke
		// recording what the maintainer scripts ask of them (in /usr/sbin:
		// dpkg runs the scripts with apt's DPkg::Path, which puts it before /usr/bin).
		c.run(t, "sh", "-c", `mkdir -p /run/systemd/system && for cmd in systemctl deb-systemd-invoke; do
			printf '#!/bin/sh\necho "%s $*" >>/tmp/systemd-calls\n' $cmd >/usr/sbin/$cmd && chmod 0755 /usr/sbin/$cmd; done`)
		apt(t, "install", "/tmp/azaion-newer.deb")
		if calls := c.run(t, "cat", "/tmp/systemd-calls"); !strings.Contains(calls, "systemctl --system daemon-reload") ||
			!strings.Contains(calls, "deb-systemd-invoke restart azaion.service") {
			t.Errorf("the upgrade where systemd runs did not reload systemd and restart the service:\n%s", calls)
		}
		if v := c.run(t, "dpkg-query", "-W", "-f=${Version}", "azaion"); v != newer {
			t.Fatalf("version after the upgrade: %q", v)
		}
		if got, _ := os.ReadFile(c.path("/etc/azaion/azaion.yaml")); string(got) != string(edited) {
			t.Errorf("the edited config was replaced:\n%s", got)
		}
		if !strings.Contains(c.run(t, "setpriv", "--reuid=azaion", "--regid=azaion", "--init-groups", "--", "azaion", "models", "list"), "kept") {
			t.Error("the imported model is gone")
		}
		serve = startService(t, c, u)
		detectAs(t, c, "alice", "kept")
		detectAs(t, c, "alice", "yolo11n_int8")
		if err := serve.stop(t); err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
	})

	t.Run("remove keeps state", func(t *testing.T) {
		apt(t, "remove", "azaion")
		if calls := c.run(t, "cat", "/tmp/systemd-calls"); !strings.Contains(calls, "deb-systemd-invoke stop azaion.service") {
			t.Errorf("remove where systemd runs did not stop the service:\n%s", calls)
		}
		c.run(t, "sh", "-c", "rm /usr/sbin/systemctl /usr/sbin/deb-systemd-invoke && rmdir /run/systemd/system")
		for _, p := range []string{"/usr/bin/azaion", "/usr/lib/azaion/plugins/azaion-plugin-onnx"} {
			if _, err := os.Stat(c.path(p)); err == nil {
				t.Errorf("%s left after remove", p)
			}
		}
		for _, p := range []string{"/etc/azaion/azaion.yaml", "/var/lib/azaion/models-local/yolo11n_int8.onnx", "/var/lib/azaion/models"} {
			if _, err := os.Stat(c.path(p)); err != nil {
				t.Errorf("remove took %s: %v", p, err)
			}
		}
		c.run(t, "getent", "passwd", "azaion")
	})

	t.Run("purge leaves nothing", func(t *testing.T) {
		apt(t, "purge", "azaion")
		if out, err := c.try("dpkg-query", "-W", "-f=${Status}", "azaion"); err == nil && !strings.Contains(out, "not-installed") {
			t.Errorf("dpkg still knows azaion: %s", out)
		}
		left := c.run(t, "sh", "-c", "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /var/cache/apt/archives \\) -prune -o -name '*azaion*' -print; "+
			"grep -l azaion /etc/passwd /etc/group /etc/shadow /etc/gshadow /var/lib/dpkg/statoverride || true")
		if strings.TrimSpace(left) != "" {
			t.Errorf("purge left:\n%s", left)
		}
	})
}

// startService starts `azaion serve` in the root as the unit says: its
// ExecStart, User, Group, SupplementaryGroups, Environment(File), UMask,
// RuntimeDirectory and StateDirectory with their modes, and a notify socket
// with WATCHDOG_USEC for Type=notify; it returns once the daemon sent
// READY=1 and its first WATCHDOG=1.
func startService(t *testing.T, c *chroot, u unit) *proc {
	t.Helper()
	c.run(t, "install", "-d", "-o", u.user, "-g", u.group, "-m", u.runtimeMode, "/run/"+u.runtimeDirectory)
	c.run(t, "chown", "-R", u.user+":"+u.group, "/var/lib/"+u.stateDirectory)
	c.run(t, "chmod", u.stateMode, "/var/lib/"+u.stateDirectory)
	notify := fmt.Sprintf("/run/notify-%d", time.Now().UnixNano())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: c.path(notify), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := os.Chmod(c.path(notify), 0o666); err != nil {
		t.Fatal(err)
	}
	groups := strings.Fields(c.run(t, "id", "-G", u.user))
	for _, g := range u.supplementaryGroups {
		if out, err := c.try("getent", "group", g); err == nil {
			groups = append(groups, strings.Split(out, ":")[2])
		}
	}
	pw := strings.Split(strings.TrimSpace(c.run(t, "getent", "passwd", u.user)), ":")
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"USER=" + u.user, "LOGNAME=" + u.user, "HOME=" + pw[5], "SHELL=" + pw[6],
		"RUNTIME_DIRECTORY=/run/" + u.runtimeDirectory, "STATE_DIRECTORY=/var/lib/" + u.stateDirectory,
		"NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=" + strconv.Itoa(seconds(t, u.watchdogSec)*1_000_000)}
	env = append(env, u.environment...)
	for _, f := range u.environmentFiles {
		optional := strings.HasPrefix(f, "-")
		b, err := os.ReadFile(c.path(strings.TrimPrefix(f, "-")))
		if err != nil && !optional {
			t.Fatalf("EnvironmentFile %s: %v", f, err)
		}
		env = append(env, envFile(b)...)
	}
	args := []string{"setpriv", "--reuid=" + u.user, "--regid=" + u.group, "--groups=" + strings.Join(groups, ","),
		"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "env", "-i"}
	args = append(args, env...)
	args = append(args, "/bin/sh", "-c", "umask "+u.umask+" && exec \"$@\"", "sh")
	args = append(args, u.execStart...)
	p := c.start(args...)
	want := []string{"READY=1", "WATCHDOG=1"}
	for len(want) > 0 {
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no %s from the daemon: %v\n%s", want[0], err, p.out.String())
		}
		if string(buf[:n]) == want[0] {
			want = want[1:]
		}
	}
	return p
}

// detectAs runs `azaion detect --json` on bus.jpg as user, with the user's
// groups, over the default socket, and compares with the reference.
func detectAs(t *testing.T, c *chroot, user, model string) {
	t.Helper()
	var out string
	var err error
	deadline := time.Now().Add(3 * time.Minute)
	for { // the model may still be loading
		out, err = c.try("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--", "azaion", "detect", "--json", "--model", model, "/tmp/bus.jpg")
		if err == nil || time.Now().After(deadline) || !strings.Contains(out, "unavailable") {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("detect as %s: %v\n%s", user, err, out)
	}
	var res api.DetectResponse
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("detect --json: %v\n%s", err, out)
	}
	ref := "yolo11n_int8.ref.json"
	if model == "kept" {
		ref = "yolo11n_int8_nms.ref.json"
	}
	yolotest.Match(t, yolotest.FromAPI(res.Detections), yolotest.Load(t, testenv.Model(t, ref), "bus.jpg"))
}

// doctor runs `azaion doctor` as root in the root; it returns its output and
// whether it passed.
func doctor(t *testing.T, c *chroot) (string, bool) {
	t.Helper()
	out, err := c.try("azaion", "doctor")
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("azaion doctor: %v\n%s", err, out)
	}
	return out, err == nil
}

// rebuild returns a copy of a package with another version: the same build,
// as a newer package, for the upgrade.
func rebuild(t *testing.T, debPath, version string) string {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	run(t, "dpkg-deb", "-R", debPath, tree)
	ctl := filepath.Join(tree, "DEBIAN", "control")
	b, err := os.ReadFile(ctl)
	if err != nil {
		t.Fatal(err)
	}
	f := controlFields(string(b))
	b = []byte(strings.Replace(string(b), "Version: "+f["Version"]+"\n", "Version: "+version+"\n", 1))
	if err := os.WriteFile(ctl, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "azaion.deb")
	run(t, "dpkg-deb", "--root-owner-group", "-Zgzip", "-b", tree, out)
	return out
}

func seconds(t *testing.T, s string) int {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return int(d.Seconds())
}

var _ = syscall.SIGTERM
