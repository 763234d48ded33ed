package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/azaion/edge/sdk/api"
)

func init() {
	register(&command{Name: "streams add", Summary: "start a live stream session (RTSP) in the running daemon", Run: runStreamsAdd})
	register(&command{Name: "streams ls", Summary: "list the live stream sessions", Run: runStreamsLs})
	register(&command{Name: "streams watch", Summary: "print a live stream session's detections as they come", Run: runStreamsWatch})
	register(&command{Name: "streams rm", Summary: "stop and remove live stream sessions", Run: runStreamsRm})
}

// clientFlag adds --socket and returns a function giving the client.
func clientFlag(fs interface {
	String(name, value, usage string) *string
}) func() *api.Client {
	socket := fs.String("socket", "", "daemon socket (default $AZAION_SOCKET or "+api.DefaultSocket+")")
	return func() *api.Client {
		if *socket != "" {
			return api.NewSocketClient(*socket)
		}
		return api.FromEnv()
	}
}

func runStreamsAdd(ctx context.Context, args []string) error {
	fs := newFlags("streams add")
	id := fs.String("id", "", "session id (default: generated)")
	model := fs.String("model", "", "model name or name:version (optional when one model is loaded)")
	every := fs.Int("every", 0, "run the model on every Nth frame (default 4)")
	conf := fs.Float64("conf", 0, "minimum score (default 0.25)")
	iou := fs.Float64("iou", 0, "NMS IoU threshold (default 0.45)")
	maxDet := fs.Int("max-det", 0, "maximum detections per frame (default 300)")
	classes := fs.String("classes", "", "comma-separated class ids to keep")
	client := clientFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion streams add [flags] URL|-\n\nURL is rtsp:// or rtsps://; - reads it from the first line of stdin,\nwhich keeps credentials off the command line.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one stream URL (or - to read it from stdin)")
	}
	src := fs.Arg(0)
	if src == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the URL from stdin: %w", err)
		}
		src = strings.TrimSpace(line)
	}
	req := api.StreamRequest{ID: *id, Source: src, Model: *model, Every: *every, Conf: *conf, IoU: *iou, MaxDet: *maxDet}
	if *classes != "" {
		for _, f := range strings.Split(*classes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return usageErrorf("--classes %q: want comma-separated integers", *classes)
			}
			req.Classes = append(req.Classes, n)
		}
	}
	s, err := client().AddStream(ctx, req)
	if err != nil {
		return err
	}
	fmt.Printf("stream %s added: %s (%s)\n", s.ID, s.Source, s.State)
	return nil
}

func runStreamsLs(ctx context.Context, args []string) error {
	fs := newFlags("streams ls")
	asJSON := fs.Bool("json", false, "print the sessions as JSON")
	client := clientFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	list, err := client().Streams(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(api.StreamList{Streams: list})
	}
	printStreams(os.Stdout, list)
	return nil
}

func printStreams(w io.Writer, list []api.Stream) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no stream sessions (azaion streams add URL)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tFPS IN\tFPS OUT\tDECODED\tPROCESSED\tDROPPED\tRECONNECTS\tSOURCE\tLAST ERROR")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%s\t%s\n", s.ID, s.State, s.FPSIn, s.FPSOut,
			s.FramesDecoded, s.FramesProcessed, s.FramesDropped, s.Reconnects, s.Source, s.LastError)
	}
	tw.Flush()
}

func runStreamsWatch(ctx context.Context, args []string) error {
	fs := newFlags("streams watch")
	asJSON := fs.Bool("json", false, "print each event as a JSON line")
	frames := fs.Int("frames", 0, "exit after this many frames (0: until interrupted)")
	client := clientFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one stream id")
	}
	n := 0
	done := errors.New("done")
	enc := json.NewEncoder(os.Stdout)
	err := client().WatchStream(ctx, fs.Arg(0), func(ev api.StreamEvent) error {
		switch {
		case ev.Frame != nil:
			f := ev.Frame
			if *asJSON {
				if err := enc.Encode(struct {
					Event string `json:"event"`
					*api.StreamFrame
				}{"frame", f}); err != nil {
					return err
				}
			} else {
				parts := make([]string, len(f.Detections))
				for i, d := range f.Detections {
					parts[i] = fmt.Sprintf("%s %.2f", d.Label, d.Score)
				}
				fmt.Printf("%s  frame %d  %s\n", f.Time.Format(time.TimeOnly+".000"), f.Frame, strings.Join(parts, ", "))
			}
			if n++; *frames > 0 && n >= *frames {
				return done
			}
		case ev.State != nil:
			s := ev.State
			if *asJSON {
				return enc.Encode(struct {
					Event string `json:"event"`
					*api.Stream
				}{"state", s})
			}
			msg := fmt.Sprintf("stream %s %s", s.ID, s.State)
			if s.LastError != "" && s.State != api.StreamRunning {
				msg += ": " + s.LastError
			}
			fmt.Println(msg)
		}
		return nil
	})
	if errors.Is(err, done) || (err != nil && ctx.Err() != nil) {
		return nil
	}
	return err
}

func runStreamsRm(ctx context.Context, args []string) error {
	fs := newFlags("streams rm")
	client := clientFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErrorf("want stream ids")
	}
	c := client()
	failed := 0
	for _, id := range fs.Args() {
		if err := c.RemoveStream(ctx, id); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", id, err)
			failed++
			continue
		}
		fmt.Printf("stream %s removed\n", id)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d streams not removed", failed, fs.NArg())
	}
	return nil
}
