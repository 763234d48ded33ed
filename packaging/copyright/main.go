// Command copyright writes the .deb's /usr/share/doc/azaion/copyright: the
// project's notice, then every third-party component the package bundles —
// the ONNX Runtime library and each Go module (and the Go standard library)
// compiled into the given binaries, read from their build information — with
// its licence: a reference to /usr/share/common-licenses for the licences
// Debian keeps there, the full text otherwise. Run by packaging/deb.sh.
package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

func main() {
	out := flag.String("o", "", "file to write")
	version := flag.String("version", "", "package version")
	ortVersion := flag.String("ort-version", "", "bundled ONNX Runtime version")
	ortLicense := flag.String("ort-license", "packaging/licenses/onnxruntime.txt", "ONNX Runtime licence text")
	root := flag.String("root", "", "package root the binaries are given relative to (for their installed paths)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: copyright -o FILE -version V -ort-version V -root DIR BINARY...")
		os.Exit(2)
	}
	b, err := render(*version, *ortVersion, *ortLicense, *root, flag.Args())
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "copyright:", err)
		os.Exit(1)
	}
}

// component is one bundled third-party component.
type component struct {
	name, version string
	where         []string // installed paths that contain it
	license       string   // SPDX-like short name
	text          string   // licence text, when not in common-licenses
	notice        string   // NOTICE file, when the module has one
}

// common are the licences Debian ships in /usr/share/common-licenses.
var common = map[string]bool{"Apache-2.0": true, "MPL-2.0": true}

func render(version, ortVersion, ortLicense, root string, bins []string) ([]byte, error) {
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return nil, err
	}
	comps := map[string]*component{}
	var order []string
	add := func(key string, c *component, where string) {
		if old, ok := comps[key]; ok {
			if !contains(old.where, where) {
				old.where = append(old.where, where)
			}
			return
		}
		c.where = []string{where}
		comps[key] = c
		order = append(order, key)
	}
	for _, bin := range bins {
		where := bin
		if root != "" {
			if rel, err := filepath.Rel(root, bin); err == nil {
				where = "/" + rel
			}
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bin, err)
		}
		text, err := os.ReadFile(filepath.Join(goroot, "LICENSE"))
		if err != nil {
			return nil, fmt.Errorf("go licence: %w", err)
		}
		add("go", &component{name: "The Go standard library and runtime", version: info.GoVersion,
			license: classify(string(text)), text: string(text)}, where)
		for _, d := range info.Deps {
			m := d
			if d.Replace != nil {
				m = d.Replace
			}
			c, err := module(modcache, m.Path, m.Version)
			if err != nil {
				return nil, err
			}
			add(m.Path+"@"+m.Version, c, where)
		}
	}
	if ortVersion != "" {
		text, err := os.ReadFile(ortLicense)
		if err != nil {
			return nil, err
		}
		add("onnxruntime", &component{name: "ONNX Runtime", version: ortVersion, license: "MIT", text: string(text),
			notice: "ONNX Runtime includes third-party components; their notices and licences are listed in\n" +
				"https://github.com/microsoft/onnxruntime/blob/v" + ortVersion + "/ThirdPartyNotices.txt"},
			"/usr/lib/azaion/libonnxruntime.so.1")
	}
	sort.SliceStable(order, func(i, j int) bool {
		rank := func(k string) int {
			switch k {
			case "onnxruntime":
				return 0
			case "go":
				return 1
			}
			return 2
		}
		if ri, rj := rank(order[i]), rank(order[j]); ri != rj {
			return ri < rj
		}
		return order[i] < order[j]
	})

	var w bytes.Buffer
	fmt.Fprintf(&w, "Azaion Edge (package azaion %s)\n\nCopyright (c) Azaion. All rights reserved.\n\n", version)
	w.WriteString("Bundled third-party software\n============================\n\n" +
		"The package ships these third-party components inside its files. Licences whose\n" +
		"full text Debian keeps in /usr/share/common-licenses are referenced there; the\n" +
		"others are given in full.\n")
	for _, k := range order {
		c := comps[k]
		fmt.Fprintf(&w, "\n%s %s\n  In: %s\n", c.name, c.version, strings.Join(c.where, ", "))
		full := !common[c.license] || mixed(c.text)
		if !full {
			fmt.Fprintf(&w, "  License: %s (/usr/share/common-licenses/%s)\n", c.license, c.license)
		} else {
			fmt.Fprintf(&w, "  License: %s\n", c.license)
		}
		if c.notice != "" {
			fmt.Fprintf(&w, "  Notice:\n%s", indent(c.notice, "    "))
		}
		if full {
			fmt.Fprintf(&w, "  Licence text:\n%s", indent(referApache(c.text), "    "))
		}
	}
	return w.Bytes(), nil
}

// module reads a Go module's licence (and NOTICE) from the module cache.
func module(modcache, path, version string) (*component, error) {
	dir := filepath.Join(modcache, escape(path)+"@"+version)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("module %s %s: %w (is it in the module cache? run go mod download)", path, version, err)
	}
	c := &component{name: path, version: version}
	for _, e := range entries {
		n := strings.ToUpper(e.Name())
		isLicense := strings.HasPrefix(n, "LICENSE") || strings.HasPrefix(n, "LICENCE") || strings.HasPrefix(n, "COPYING")
		if e.IsDir() || (!isLicense && !strings.HasPrefix(n, "NOTICE")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if isLicense && c.text == "" {
			c.text = string(b)
		} else if strings.HasPrefix(n, "NOTICE") {
			c.notice = string(b)
		}
	}
	if c.text == "" {
		return nil, fmt.Errorf("module %s %s has no LICENSE file in %s", path, version, dir)
	}
	c.license = classify(c.text)
	return c, nil
}

// classify names a licence from its text.
func classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	switch {
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0"
	case strings.Contains(t, "Mozilla Public License Version 2.0") || strings.Contains(t, "Mozilla Public License, version 2.0"):
		return "MPL-2.0"
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "MIT"
	case strings.Contains(t, "Permission to use, copy, modify, and/or distribute") || strings.Contains(t, "ISC License"):
		return "ISC"
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		if strings.Contains(t, "Neither the name") || strings.Contains(t, "names of its contributors") {
			return "BSD-3-Clause"
		}
		return "BSD-2-Clause"
	}
	return "other (text below)"
}

// mixed reports whether a licence file holds more than one licence (e.g.
// Apache-2.0 code beside BSD-licensed parts): it is then given in full.
func mixed(text string) bool {
	t := strings.Join(strings.Fields(text), " ")
	n := 0
	for _, marker := range []string{"Apache License", "Mozilla Public License", "Permission is hereby granted",
		"Redistribution and use in source and binary forms", "Permission to use, copy, modify"} {
		if strings.Contains(t, marker) {
			n++
		}
	}
	return n > 1
}

// referApache replaces a full Apache License 2.0 text inside a licence file
// that also holds other licences by a reference to Debian's copy.
func referApache(text string) string {
	lines := strings.Split(text, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "Apache License" && i+1 < len(lines) && strings.Contains(lines[i+1], "Version 2.0, January 2004") {
			end := -1
			for j := i; j < len(lines); j++ {
				t := strings.TrimSpace(lines[j])
				if t == "END OF TERMS AND CONDITIONS" {
					end = j
				}
				if end >= 0 && strings.HasPrefix(t, "limitations under the License.") {
					end = j
					break
				}
				if end >= 0 && j > end+40 {
					break
				}
			}
			if end >= 0 {
				out = append(out, "[The Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0]")
				i = end
				continue
			}
		}
		out = append(out, lines[i])
	}
	return strings.Join(out, "\n")
}

// escape applies the module cache's case encoding (an upper-case letter
// becomes "!" and its lower case).
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			b.WriteString(prefix + ".\n") // a blank line, as Debian control-style text writes it
			continue
		}
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go env %s: %s", key, ee.Stderr)
		}
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
