package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
)

func init() {
	register(&command{Name: "doctor", Summary: "check this installation: config, plugins, runtimes, accelerators, models, network, disk, socket", Run: runDoctor})
}

const defaultConfigHint = config.DefaultPath + " when it exists; env AZAION_CONFIG"

// Verdicts of a check. Only fail makes doctor exit non-zero.
const (
	verdictOK   = "ok"
	verdictWarn = "warn"
	verdictFail = "fail"
	verdictSkip = "skip"
)

// finding is one line of `azaion doctor`.
type finding struct {
	// Check names what was checked ("config", "plugin onnx checksum").
	Check string `json:"check"`
	// Verdict is ok, warn, fail or skip.
	Verdict string `json:"verdict"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Remedy says what to do about a warn or a fail.
	Remedy string `json:"remedy,omitempty"`
}

// doctorReport is `azaion doctor --json`.
type doctorReport struct {
	OK     bool      `json:"ok"`
	Checks []finding `json:"checks"`
}

// doctorOptions are the flags of `azaion doctor`.
type doctorOptions struct {
	configPath string
	user       string
	timeout    time.Duration
	unit       string
}

// runDoctor checks an installed system and prints one line per check with
// its verdict and, for a warning or a failure, what to do. It exits 1 when a
// check fails.
func runDoctor(ctx context.Context, args []string) error {
	fs := newFlags("doctor")
	var o doctorOptions
	fs.StringVar(&o.configPath, "config", "", "config file (default "+defaultConfigHint+")")
	fs.StringVar(&o.user, "user", "azaion", "the user the service runs as (its access to devices, state and socket is checked)")
	fs.StringVar(&o.unit, "unit", "/lib/systemd/system/azaion.service", "the systemd unit (its SupplementaryGroups count for device access)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "how long a plugin or a model load may take")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r := doctor(ctx, o)
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Println(string(b))
	} else {
		printFindings(os.Stdout, r.Checks)
	}
	if !r.OK {
		return errDoctorFailed
	}
	return nil
}

var errDoctorFailed = fmt.Errorf("some checks failed (the lines marked FAIL say what to do)")

// printFindings writes one line per finding: verdict, check, detail, remedy.
func printFindings(w io.Writer, fs []finding) {
	width := 0
	for _, f := range fs {
		width = max(width, len(f.Check))
	}
	for _, f := range fs {
		line := fmt.Sprintf("%-4s  %-*s  %s", strings.ToUpper(f.Verdict), width, f.Check, oneLine(f.Detail))
		if f.Remedy != "" {
			line += " -> " + oneLine(f.Remedy)
		}
		fmt.Fprintln(w, line)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// doctor runs every check. A configuration that does not load is reported,
// and the other checks run on the defaults.
func doctor(ctx context.Context, o doctorOptions) doctorReport {
	var fs []finding
	add := func(f ...finding) { fs = append(fs, f...) }

	path, explicit := configPath(o.configPath)
	cfg, err := config.Load(path, explicit)
	switch {
	case err != nil:
		add(finding{"config", verdictFail, err.Error(),
			fmt.Sprintf("fix the key it names in %s (the packaged file lists every key with its default), then: systemctl restart azaion", path)})
		d := config.Default()
		cfg = &d
	default:
		detail := path + " is valid"
		if _, serr := os.Stat(path); serr != nil {
			detail = path + " is absent: the defaults apply"
		}
		add(finding{"config", verdictOK, detail, ""})
	}

	svc := lookupServiceUser(o.user, o.unit)
	add(svc.finding(cfg))
	add(checkPlugins(ctx, cfg, o.timeout)...)
	add(checkAccelerators(cfg, svc)...)
	add(checkState(cfg, svc)...)
	add(checkNetwork(ctx, cfg)...)
	add(checkSpace(cfg)...)
	add(checkSocket(ctx, cfg, svc))

	ok := true
	for _, f := range fs {
		ok = ok && f.Verdict != verdictFail
	}
	return doctorReport{OK: ok, Checks: fs}
}

// configPath is where the daemon reads its configuration (see loadConfig).
func configPath(flagPath string) (string, bool) {
	if flagPath != "" {
		return flagPath, true
	}
	if p := os.Getenv("AZAION_CONFIG"); p != "" {
		return p, true
	}
	return config.DefaultPath, false
}
