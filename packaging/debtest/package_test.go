package debtest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestPackageContents checks each package's control fields and files: the
// binaries for its architecture (the daemon static, the plugins with cgo)
// with matching checksums, that architecture's ONNX Runtime, the conffiles,
// the unit, docs, the man page and a copyright file naming every bundled
// component; and Depends covering every library the binaries link.
func TestPackageContents(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			path, version := deb(t, arch)
			root, ctl := extract(t, path)
			info := controlFields(run(t, "dpkg-deb", "-f", path))
			for k, want := range map[string]string{"Package": "azaion", "Version": version, "Architecture": arch,
				"Section": "misc", "Priority": "optional"} {
				if info[k] != want {
					t.Errorf("%s: %q, want %q", k, info[k], want)
				}
			}
			if !regexp.MustCompile(`^0\.0\.0~git\d{14}\.[0-9a-f]{7}$|^\d+\.\d+\.\d+`).MatchString(version) {
				t.Errorf("version %q is neither a tag nor 0.0.0~git<date>.<sha>", version)
			}
			if !strings.Contains(info["Maintainer"], "@") || strings.Contains(strings.Join([]string{info["Depends"], info["Maintainer"]}, ""), "${") {
				t.Errorf("maintainer %q, depends %q", info["Maintainer"], info["Depends"])
			}

			// Files, with their modes.
			for p, mode := range map[string]os.FileMode{
				"usr/bin/azaion": 0o755, "usr/lib/azaion/plugins/azaion-plugin-onnx": 0o755,
				"usr/lib/azaion/plugins/azaion-plugin-trainer": 0o755, "usr/lib/azaion/libonnxruntime.so.1": 0o644,
				"etc/azaion/azaion.yaml": 0o640, "etc/default/azaion": 0o600, "lib/systemd/system/azaion.service": 0o644,
				"usr/share/doc/azaion/copyright": 0o644, "usr/share/doc/azaion/changelog.gz": 0o644,
				"usr/share/doc/azaion/README.md.gz": 0o644, "usr/share/man/man1/azaion.1.gz": 0o644,
			} {
				st, err := os.Stat(filepath.Join(root, p))
				if err != nil {
					t.Errorf("missing /%s", p)
					continue
				}
				if st.Mode().Perm() != mode {
					t.Errorf("/%s has mode %04o, want %04o", p, st.Mode().Perm(), mode)
				}
			}
			conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
			for _, c := range []string{"/etc/azaion/azaion.yaml", "/etc/default/azaion"} {
				if !strings.Contains(string(conffiles), c+"\n") {
					t.Errorf("%s is not a conffile: %q", c, conffiles)
				}
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				if st, err := os.Stat(filepath.Join(ctl, s)); err != nil || st.Mode().Perm() != 0o755 {
					t.Errorf("maintainer script %s: %v", s, err)
				}
			}
			same(t, filepath.Join(root, "etc/azaion/azaion.yaml"), filepath.Join(testenv.RepoRoot(t), "packaging/azaion.yaml"))
			same(t, filepath.Join(root, "lib/systemd/system/azaion.service"), filepath.Join(testenv.RepoRoot(t), "packaging/azaion.service"))

			// Binaries: this architecture; the daemon without an interpreter
			// (static, no cgo); the plugins matching their .sha256.
			elfOf := func(p string) *elf.File {
				f, err := elf.Open(filepath.Join(root, p))
				if err != nil {
					t.Fatalf("/%s: %v", p, err)
				}
				t.Cleanup(func() { f.Close() })
				if f.Machine != machines[arch] {
					t.Errorf("/%s is %s, want %s", p, f.Machine, machines[arch])
				}
				return f
			}
			if d := elfOf("usr/bin/azaion"); d.Section(".interp") != nil {
				t.Errorf("/usr/bin/azaion is dynamically linked: the daemon must be CGO_ENABLED=0")
			}
			elfOf("usr/lib/azaion/libonnxruntime.so.1")
			var needed []string
			for _, p := range []string{"onnx", "trainer"} {
				bin := "usr/lib/azaion/plugins/azaion-plugin-" + p
				libs, err := elfOf(bin).ImportedLibraries()
				if err != nil {
					t.Fatal(err)
				}
				needed = append(needed, libs...)
				sum, _ := os.ReadFile(filepath.Join(root, bin+".sha256"))
				b, _ := os.ReadFile(filepath.Join(root, bin))
				h := sha256.Sum256(b)
				if f := strings.Fields(string(sum)); len(f) == 0 || f[0] != hex.EncodeToString(h[:]) {
					t.Errorf("/%s.sha256 = %q, the file hashes to %x", bin, sum, h)
				}
			}
			// Depends names a package that ships each library the plugins
			// link (looked up in the dpkg database of that architecture: the
			// host's, or the arm64 sysroot's).
			deps := info["Depends"]
			admin := []string{}
			if arch == "arm64" {
				admin = []string{"--admindir=" + filepath.Join(arm64Sysroot(t), "var/lib/dpkg")}
			}
			seen := map[string]bool{}
			for _, lib := range needed {
				if seen[lib] {
					continue
				}
				seen[lib] = true
				out, _ := exec.Command("dpkg-query", append(admin, "-S", "*/"+lib)...).Output()
				var owners []string
				for _, l := range strings.Split(string(out), "\n") {
					pkgs, _, ok := strings.Cut(l, ": ")
					if !ok {
						continue
					}
					for _, p := range strings.Split(pkgs, ", ") {
						owners = append(owners, strings.TrimSuffix(p, ":"+arch))
					}
				}
				if !slices.ContainsFunc(owners, func(p string) bool {
					return regexp.MustCompile(`(^|, )` + regexp.QuoteMeta(p) + `( |,|$)`).MatchString(deps)
				}) {
					t.Errorf("Depends names no package shipping %s (shipped by %v): %s", lib, owners, deps)
				}
			}
			for _, pkg := range []string{"libc6 (>= ", "libstdc++6 (>= ", "libgcc-s1 (>= ", "adduser"} {
				if !strings.Contains(deps, pkg) {
					t.Errorf("Depends lacks %s: %s", pkg, deps)
				}
			}

			// copyright: the project, ONNX Runtime with its licence, and every
			// Go module compiled into the binaries.
			cr, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/azaion/copyright"))
			for _, want := range []string{"Azaion", "ONNX Runtime 1.30.0", "Copyright (c) Microsoft Corporation", "The Go standard library"} {
				if !bytes.Contains(cr, []byte(want)) {
					t.Errorf("copyright lacks %q", want)
				}
			}
			for _, bin := range []string{"usr/bin/azaion", "usr/lib/azaion/plugins/azaion-plugin-onnx"} {
				bi, err := buildinfo.ReadFile(filepath.Join(root, bin))
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range bi.Deps {
					if !bytes.Contains(cr, []byte(d.Path+" "+d.Version)) {
						t.Errorf("copyright lacks %s %s (in /%s)", d.Path, d.Version, bin)
					}
				}
			}
			if cl := gunzip(t, filepath.Join(root, "usr/share/doc/azaion/changelog.gz")); !strings.HasPrefix(cl, "azaion ("+version+")") {
				t.Errorf("changelog starts %q", cl[:min(60, len(cl))])
			}
			if arch == "amd64" {
				out, err := exec.Command(filepath.Join(root, "usr/bin/azaion"), "--version").CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "azaion "+version {
					t.Errorf("azaion --version: %q, %v; want the package version", out, err)
				}
			}
		})
	}
}

// TestLintian: lintian reports no errors for either package (the overrides
// in packaging/lintian-overrides say why each is by design).
func TestLintian(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			path, _ := deb(t, arch)
			out, err := exec.Command("lintian", "--allow-root", "--tag-display-limit", "0", path).CombinedOutput()
			t.Logf("lintian %s:\n%s", filepath.Base(path), out)
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "E: ") {
					t.Errorf("lintian error: %s", l)
				}
			}
			if err != nil && !strings.Contains(string(out), "W: ") {
				t.Errorf("lintian: %v", err)
			}
		})
	}
}

// TestUnitSecurity: systemd-analyze rates the packaged unit's exposure OK
// or better.
func TestUnitSecurity(t *testing.T) {
	path, _ := deb(t, "amd64")
	root, _ := extract(t, path)
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, "azaion.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for azaion\.service: ([0-9.]+) (\w+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security --offline=true: %s", m[0])
	if m[2] != "OK" && m[2] != "SAFE" {
		t.Errorf("exposure %s %s, want OK or SAFE:\n%s", m[1], m[2], out)
	}
}

func same(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Errorf("%s differs from %s (%v %v)", a, b, err1, err2)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
