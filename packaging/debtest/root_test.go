package debtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// debianRoot returns the fresh Debian 12 root that `make deps` caches
// (scripts/deps/64-debian-root.sh).
func debianRoot(t *testing.T) string {
	t.Helper()
	r := os.Getenv("AZAION_DEBIAN_ROOT")
	if r == "" {
		r = filepath.Join(cacheDir(), "debian-root-bookworm-amd64")
	}
	if _, err := os.Stat(r + ".stamp"); err != nil {
		t.Fatalf("no Debian 12 root at %s: run `make deps` (make test does): %v", r, err)
	}
	return r
}

// aptArchives is where the roots' apt keeps downloaded packages between runs.
func aptArchives(t *testing.T) string {
	d := filepath.Join(cacheDir(), "debian-root-apt-archives")
	if err := os.MkdirAll(filepath.Join(d, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// lockCache holds an exclusive lock on a cache file until the test ends or
// unlock is called (two test runs on one machine share the caches).
func lockCache(t *testing.T, name string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(cacheDir(), name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(unlock)
	return unlock
}

// chroot is a root file system made of read-only layers under a writable
// overlay, mounted with /proc, /sys, /dev, a fresh /run and /tmp in a
// private mount and PID namespace. Everything started in it runs in that
// PID namespace: closing it kills those processes, and the kernel drops the
// mounts with the namespace, even when the test process dies.
type chroot struct {
	t      *testing.T
	dir    string // the merged root (a path inside the namespace)
	upper  string // the overlay's writable layer
	holder *exec.Cmd
	pid    int // the namespace's first process, in the host's PID namespace
}

// newChroot mounts lowers (top first) under a fresh writable layer; binds
// maps host folders to folders inside the root.
func newChroot(t *testing.T, lowers []string, binds map[string]string) *chroot {
	t.Helper()
	work := t.TempDir()
	c := &chroot{t: t, dir: filepath.Join(work, "root"), upper: filepath.Join(work, "upper")}
	for _, d := range []string{c.dir, c.upper, filepath.Join(work, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var script strings.Builder
	fmt.Fprintf(&script, "set -e\nmount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s\n",
		strings.Join(lowers, ":"), c.upper, filepath.Join(work, "work"), c.dir)
	fmt.Fprintf(&script, "m=%s\nmount -t proc proc $m/proc\nmount --rbind /dev $m/dev\n", c.dir)
	script.WriteString("mount -t sysfs -o ro sysfs $m/sys 2>/dev/null || mount --rbind /sys $m/sys\n")
	script.WriteString("mount -t tmpfs -o mode=0755 tmpfs $m/run\nmount -t tmpfs -o mode=1777 tmpfs $m/tmp\n")
	for host, inside := range binds {
		fmt.Fprintf(&script, "mkdir -p $m%s\nmount --bind %s $m%s\n", inside, host, inside)
	}
	script.WriteString("echo ready\nexec sleep infinity\n")
	c.holder = exec.Command("unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--kill-child", "sh", "-c", script.String())
	c.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	c.holder.Stderr = &stderr
	out, err := c.holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			c.holder.Wait()
			t.Fatalf("mount the root: %s", stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("mount the root: no answer: %s", stderr.String())
	}
	c.pid = childOf(t, c.holder.Process.Pid)
	return c
}

// close kills everything in the namespace, which unmounts the root.
func (c *chroot) close() {
	if c.holder == nil || c.holder.Process == nil {
		return
	}
	_ = c.holder.Process.Kill() // --kill-child kills the namespace's init, the kernel the rest
	_ = c.holder.Wait()
	for i := 0; i < 100 && c.pid > 0; i++ {
		if err := syscall.Kill(c.pid, 0); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.holder = nil
}

// childOf returns the (first) child of a process.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has no child", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// path returns how the host reaches a path inside the root.
func (c *chroot) path(p string) string {
	return fmt.Sprintf("/proc/%d/root%s%s", c.pid, c.dir, p)
}

// command returns a command that runs args inside the root (chroot) in the
// namespace.
func (c *chroot) command(args ...string) *exec.Cmd {
	all := append([]string{"-t", strconv.Itoa(c.pid), "-m", "-p", "--", "chroot", c.dir}, args...)
	cmd := exec.Command("nsenter", all...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "HOME=/root"}
	return cmd
}

// run runs a command in the root and returns its output; failure fails the test.
func (c *chroot) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.command(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("in the root: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// try runs a command in the root and returns its output and error.
func (c *chroot) try(args ...string) (string, error) {
	out, err := c.command(args...).CombinedOutput()
	return string(out), err
}

// copyIn copies a host file into the root.
func (c *chroot) copyIn(host, inside string, mode os.FileMode) {
	c.t.Helper()
	b, err := os.ReadFile(host)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.path(inside), b, mode); err != nil {
		c.t.Fatal(err)
	}
}

// proc is a long-running process in the root.
type proc struct {
	cmd  *exec.Cmd
	pid  int // the chrooted process, in the host's PID namespace
	out  syncBuffer
	done chan error
}

// start runs a command in the root in the background.
func (c *chroot) start(args ...string) *proc {
	c.t.Helper()
	p := &proc{cmd: c.command(args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	p.pid = childOf(c.t, p.cmd.Process.Pid)
	c.t.Cleanup(func() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		if c.t.Failed() {
			c.t.Logf("%s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		t.Fatalf("no exit within 60s of SIGTERM:\n%s", p.out.String())
		return nil
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// depsLayer returns a cached overlay layer on top of the Debian root with the
// package's dependencies installed (by apt, from its Depends), so that each
// run installs only the package itself. It is rebuilt when Depends change.
func depsLayer(t *testing.T, debPath string) string {
	t.Helper()
	base := debianRoot(t)
	depends := controlFields(run(t, "dpkg-deb", "-f", debPath))["Depends"]
	stamp, _ := os.ReadFile(base + ".stamp")
	h := sha256.Sum256([]byte(depends + "\n" + string(stamp)))
	dir := filepath.Join(cacheDir(), "debian-root-deps", hex.EncodeToString(h[:8]))
	if _, err := os.Stat(dir + ".stamp"); err == nil {
		return dir
	}
	unlock := lockCache(t, ".debian-root-deps.lock")
	defer unlock()
	if _, err := os.Stat(dir + ".stamp"); err == nil {
		return dir
	}
	var pkgs []string
	for _, d := range strings.Split(depends, ",") {
		alt, _, _ := strings.Cut(d, "|")
		name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
		pkgs = append(pkgs, name)
	}
	start := time.Now()
	c := newChroot(t, []string{base}, map[string]string{aptArchives(t): "/var/cache/apt/archives"})
	c.run(t, append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
	c.close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(c.upper, dir); err != nil { // another file system: copy
		if out, err := exec.Command("cp", "-a", c.upper, dir).CombinedOutput(); err != nil {
			t.Fatalf("cache the dependencies' layer: %v\n%s", err, out)
		}
	}
	if err := os.WriteFile(dir+".stamp", []byte(depends+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("cached the dependencies' layer %s in %s", dir, time.Since(start).Round(time.Second))
	pruneLayers(filepath.Dir(dir), 2)
	return dir
}

// pruneLayers keeps the newest keep dependency layers (Depends change with
// the code; two branches may test at once) and deletes the others.
func pruneLayers(parent string, keep int) {
	stamps, _ := filepath.Glob(filepath.Join(parent, "*.stamp"))
	sort.Slice(stamps, func(i, j int) bool {
		a, _ := os.Stat(stamps[i])
		b, _ := os.Stat(stamps[j])
		return a != nil && b != nil && a.ModTime().After(b.ModTime())
	})
	for i, st := range stamps {
		if i >= keep {
			os.Remove(st)
			os.RemoveAll(strings.TrimSuffix(st, ".stamp"))
		}
	}
}
