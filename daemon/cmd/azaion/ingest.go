package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/azaion/edge/daemon/internal/ingest"
)

func init() {
	register(&command{Name: "ingest", Summary: "consume the annotation stream into the data root (foreground)", Run: runIngest})
	register(&command{Name: "ingest status", Summary: "show the annotation ingest's rate, lag, rejects and last offset", Run: runIngestStatus})
}

func runIngest(ctx context.Context, args []string) error {
	fs := newFlags("ingest")
	cfgPath := fs.String("config", "", "config file (default /etc/azaion/azaion.yaml when it exists; env AZAION_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	ing, err := ingest.New(ingest.OptionsFrom(cfg, log))
	if err != nil {
		return err
	}
	return ing.Run(ctx)
}

func runIngestStatus(ctx context.Context, args []string) error {
	flags := newFlags("ingest status")
	cfgPath := flags.String("config", "", "config file (default /etc/azaion/azaion.yaml when it exists; env AZAION_CONFIG)")
	asJSON := flags.Bool("json", false, "print JSON")
	live := flags.Bool("live", true, "ask the broker for the stream's tail to compute the lag now")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	root := cfg.Data.Root
	st, err := ingest.ReadStatus(root)
	running := err == nil && time.Since(st.Updated) < 5*time.Second && st.PID > 0 && alive(st.PID)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		st = ingest.Status{Stream: cfg.Ingest.Stream, Consumer: cfg.Ingest.Consumer, LastOffset: -1, TailOffset: -1}
	}
	if !running {
		st.Connected, st.MessagesPerSecond = false, 0
	}
	if o, ok, err := ingest.ReadOffset(root); err == nil && ok && o.Offset > st.LastOffset {
		st.LastOffset = o.Offset
	}
	liveNote := ""
	if *live && cfg.Ingest.Broker != "" {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		tail, err := queryTail(tctx, cfg.Ingest.Broker, cfg.Ingest.Stream)
		cancel()
		if err != nil {
			liveNote = "broker not reachable: " + err.Error()
		} else {
			st.TailOffset = tail
			st.Lag = -1
			if tail < 0 && st.LastOffset < 0 || tail <= st.LastOffset {
				st.Lag = 0
			} else if tail >= 0 {
				st.Lag = tail - st.LastOffset
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			ingest.Status
			Running bool `json:"running"`
		}{st, running})
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	state := "no"
	if running {
		state = fmt.Sprintf("yes (pid %d, connected %v)", st.PID, st.Connected)
	} else if !st.Updated.IsZero() {
		state = fmt.Sprintf("no (last seen %s ago)", time.Since(st.Updated).Round(time.Second))
	}
	fmt.Fprintf(w, "stream\t%s (consumer %s)\n", st.Stream, st.Consumer)
	fmt.Fprintf(w, "data root\t%s\n", root)
	fmt.Fprintf(w, "running\t%s\n", state)
	fmt.Fprintf(w, "last offset\t%s\n", offsetStr(st.LastOffset))
	fmt.Fprintf(w, "tail offset\t%s\n", offsetStr(st.TailOffset))
	lag := "unknown"
	if st.Lag >= 0 {
		lag = fmt.Sprint(st.Lag)
	}
	fmt.Fprintf(w, "lag\t%s\n", lag)
	fmt.Fprintf(w, "messages/s\t%.1f\n", st.MessagesPerSecond)
	fmt.Fprintf(w, "applied\t%d (since the last start)\n", st.Applied)
	fmt.Fprintf(w, "rejected\t%d (since the last start; see %s/%s)\n", st.Rejected, root, ingest.RejectsDir)
	if liveNote != "" {
		fmt.Fprintf(w, "note\t%s\n", liveNote)
	}
	return w.Flush()
}

func offsetStr(o int64) string {
	if o < 0 {
		return "none"
	}
	return fmt.Sprint(o)
}

// alive reports whether process pid exists (EPERM: it does, as another user).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
