package debtest

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// unit is what the install test takes from the packaged systemd unit to
// start the daemon as systemd would.
type unit struct {
	execStart           []string
	user, group         string
	supplementaryGroups []string
	environment         []string
	environmentFiles    []string // "-" prefix: optional
	runtimeDirectory    string
	runtimeMode         string
	stateDirectory      string
	stateMode           string
	umask               string
	typ                 string
	watchdogSec         string
}

// parseUnit reads the [Service] section of a unit file.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u unit
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" {
			continue
		}
		switch k {
		case "ExecStart":
			u.execStart = strings.Fields(v)
		case "User":
			u.user = v
		case "Group":
			u.group = v
		case "SupplementaryGroups":
			u.supplementaryGroups = append(u.supplementaryGroups, strings.Fields(v)...)
		case "Environment":
			for _, w := range splitQuoted(v) {
				u.environment = append(u.environment, w)
			}
		case "EnvironmentFile":
			u.environmentFiles = append(u.environmentFiles, v)
		case "RuntimeDirectory":
			u.runtimeDirectory = v
		case "RuntimeDirectoryMode":
			u.runtimeMode = v
		case "StateDirectory":
			u.stateDirectory = v
		case "StateDirectoryMode":
			u.stateMode = v
		case "UMask":
			u.umask = v
		case "Type":
			u.typ = v
		case "WatchdogSec":
			u.watchdogSec = v
		}
	}
	if len(u.execStart) == 0 || u.user == "" {
		t.Fatalf("unit %s: no ExecStart or User", path)
	}
	return u
}

// splitQuoted splits an Environment= value into its assignments.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote == 0 && (ch == '"' || ch == '\''):
			quote = ch
		case quote == 0 && ch == ' ':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(ch)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// envFile parses an EnvironmentFile (KEY=VALUE lines, # comments).
func envFile(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' || !strings.Contains(l, "=") {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		out = append(out, strings.TrimSpace(k)+"="+strings.Trim(strings.TrimSpace(v), `"'`))
	}
	return out
}
