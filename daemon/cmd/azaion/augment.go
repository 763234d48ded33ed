package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/azaion/edge/sdk/api"
)

func init() {
	register(&command{Name: "augment", Summary: "augment data/ into data-processed/ (original + 7 variants) with the running daemon", Run: runAugment})
	register(&command{Name: "validate", Summary: "check the labels in data/ and move invalid images to data-corrupted/", Run: runValidate})
}

// jobFlags are the flags every job command shares.
type jobFlags struct {
	params *string
	detach *bool
	socket *string
}

func addJobFlags(fs *flag.FlagSet) jobFlags {
	return jobFlags{
		params: fs.String("params", "", "extra job parameters as a JSON object (see docs/trainer.md)"),
		detach: fs.Bool("detach", false, "print the job id and return without following it"),
		socket: fs.String("socket", "", "daemon socket (default $AZAION_SOCKET or "+api.DefaultSocket+")"),
	}
}

// jobParams merges the flags that were set (set holds name -> value) over --params.
func (f jobFlags) jobParams(set map[string]any) (json.RawMessage, error) {
	m := map[string]any{}
	if *f.params != "" {
		if err := json.Unmarshal([]byte(*f.params), &m); err != nil {
			return nil, usageErrorf("-params: not a JSON object: %v", err)
		}
	}
	for k, v := range set {
		m[k] = v
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

func (f jobFlags) client() *api.Client {
	if *f.socket != "" {
		return api.NewSocketClient(*f.socket)
	}
	return api.FromEnv()
}

// setFlags returns the values of the flags given on the command line, keyed
// by their job parameter names (rename maps flag name -> parameter name).
func setFlags(fs *flag.FlagSet, rename map[string]string) map[string]any {
	out := map[string]any{}
	fs.Visit(func(fl *flag.Flag) {
		name, ok := rename[fl.Name]
		if !ok {
			return
		}
		if g, ok := fl.Value.(flag.Getter); ok {
			out[name] = g.Get()
		}
	})
	return out
}

func runAugment(ctx context.Context, args []string) error {
	fs := newFlags("augment")
	fs.Bool("watch", false, "keep running and augment new images as they arrive (Ctrl-C stops)")
	fs.Int64("seed", 0, "random seed (default from the daemon's config)")
	fs.Int("workers", 0, "parallel workers (default from the daemon's config; 0 = all CPUs)")
	fs.Int("variants", 0, "augmented variants per image (default 7)")
	fs.Float64("min-visible", 0, "fraction of a box that must stay in the image (default 0.3)")
	jf := addJobFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion augment [flags]\n\nAugments every validated image in <data root>/data/ that has no outputs yet into data-processed/.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	params, err := jf.jobParams(setFlags(fs, map[string]string{"watch": "watch", "seed": "seed", "workers": "workers", "variants": "variants", "min-visible": "min_visible"}))
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobAugment, Params: params}, *jf.detach, os.Stdout, os.Stderr)
}

func runValidate(ctx context.Context, args []string) error {
	fs := newFlags("validate")
	fs.Bool("allow-background", true, "accept images without labels")
	fs.Float64("tolerance", 0, "how far (normalized) a box may stick out of the image (default 0.01)")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	params, err := jf.jobParams(setFlags(fs, map[string]string{"allow-background": "allow_background", "tolerance": "tolerance"}))
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobValidate, Params: params}, *jf.detach, os.Stdout, os.Stderr)
}

// runJob creates a job and follows it with a progress bar until it ends,
// then each job of its pipeline in turn (req.Then). Interrupting (Ctrl-C)
// cancels the running job on the daemon, which stops the pipeline.
func runJob(ctx context.Context, c *api.Client, req api.JobRequest, detach bool, stdout, stderr io.Writer) error {
	j, err := c.CreateJob(ctx, req)
	if api.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%w (the daemon serves no jobs: set trainer.enabled: true or AZAION_TRAINER=1 and restart it)", err)
	}
	if err != nil {
		return err
	}
	if detach {
		fmt.Fprintln(stdout, j.ID)
		return nil
	}
	for {
		end, err := followJob(ctx, c, j, stderr)
		if err != nil {
			return err
		}
		switch end.State {
		case api.JobSucceeded:
			fmt.Fprintf(stdout, "%s job %s succeeded: %s\n", end.Type, end.ID, end.Message)
		case api.JobCanceled:
			return fmt.Errorf("%s job %s was cancelled", end.Type, end.ID)
		default:
			return fmt.Errorf("%s job %s %s: %s", end.Type, end.ID, end.State, end.Error)
		}
		if end.Next == "" {
			if end.Error != "" { // succeeded, but the pipeline could not go on
				return fmt.Errorf("%s job %s: %s", end.Type, end.ID, end.Error)
			}
			return nil
		}
		if j, err = c.GetJob(ctx, end.Next); err != nil {
			return err
		}
	}
}

// followJob follows one job's events with a progress bar and returns it in
// its final state; an interrupt cancels it on the daemon.
func followJob(ctx context.Context, c *api.Client, j *api.Job, stderr io.Writer) (*api.Job, error) {
	bar := newProgressBar(stderr, isTerminal(stderr))
	end, err := c.WatchJob(ctx, j.ID, func(ev api.JobEvent) error {
		bar.update(ev)
		return nil
	})
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, cerr := c.CancelJob(cctx, j.ID); cerr != nil {
				return nil, fmt.Errorf("interrupted; cancelling job %s: %w", j.ID, cerr)
			}
			return nil, fmt.Errorf("interrupted: %s job %s cancelled", j.Type, j.ID)
		}
		return nil, err
	}
	return end, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "[#####.....]  42%  168/400  12.3 img/s  ETA 0:19  augment"
// in place on a terminal, or a line per stage change and every 10% elsewhere.
type progressBar struct {
	w       io.Writer
	tty     bool
	last    string
	stage   string
	decile  int
	printed bool
}

func newProgressBar(w io.Writer, tty bool) *progressBar {
	return &progressBar{w: w, tty: tty, decile: -1}
}

func (b *progressBar) update(ev api.JobEvent) {
	line := formatProgress(ev, 30)
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\x1b[K", line)
		b.printed = true
		return
	}
	d := int(ev.Progress * 10)
	if ev.Stage != b.stage || d != b.decile {
		b.stage, b.decile = ev.Stage, d
		if line != b.last {
			fmt.Fprintln(b.w, line)
			b.last = line
		}
	}
}

func (b *progressBar) finish() {
	if b.tty && b.printed {
		fmt.Fprintln(b.w)
	}
}

// formatProgress renders one progress line with a bar of width cells.
func formatProgress(ev api.JobEvent, width int) string {
	p := min(max(ev.Progress, 0), 1)
	n := int(p*float64(width) + 0.5)
	var sb strings.Builder
	fmt.Fprintf(&sb, "[%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), p*100)
	m := ev.Metrics
	if e, ok := m["epochs"]; ok && m["epoch"] > 0 {
		fmt.Fprintf(&sb, "  epoch %.0f/%.0f", m["epoch"], e)
		if l, ok := m["loss_box"]; ok {
			fmt.Fprintf(&sb, "  loss %.3f/%.3f/%.3f", l, m["loss_cls"], m["loss_dfl"])
		}
		if v, ok := m["map50"]; ok {
			fmt.Fprintf(&sb, "  mAP50 %.3f", v)
		}
	}
	if total, ok := m["images_total"]; ok {
		fmt.Fprintf(&sb, "  %.0f/%.0f", m["images_done"], total)
	}
	if r, ok := m["images_per_s"]; ok {
		fmt.Fprintf(&sb, "  %.1f img/s", r)
	}
	if eta, ok := m["eta_s"]; ok {
		fmt.Fprintf(&sb, "  ETA %s", formatETA(eta))
	}
	if ev.Stage != "" {
		sb.WriteString("  " + ev.Stage)
	}
	if ev.Message != "" {
		sb.WriteString(": " + ev.Message)
	}
	return sb.String()
}

func formatETA(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}
