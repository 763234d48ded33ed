package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/azaion/edge/sdk/api"
)

func init() {
	register(&command{Name: "detect", Summary: "detect objects in images and videos with the running daemon", Run: runDetect})
}

func runDetect(ctx context.Context, args []string) error {
	fs := newFlags("detect")
	model := fs.String("model", "", "model name or name:version (optional when one model is loaded)")
	conf := fs.Float64("conf", 0, "minimum score (default 0.25)")
	iou := fs.Float64("iou", 0, "NMS IoU threshold (default 0.45)")
	maxDet := fs.Int("max-det", 0, "maximum detections per image (default 300)")
	classes := fs.String("classes", "", "comma-separated class ids to keep")
	asJSON := fs.Bool("json", false, "print the daemon's JSON responses, one per line (for a video: its NDJSON answer)")
	every := fs.Int("every", 0, "video: run the model on every Nth frame (default 4)")
	out := fs.String("out", "", "video: also write the video with the boxes drawn to this MP4 file")
	start := fs.Duration("start", 0, "video: skip this much of the start (e.g. 1m30s)")
	duration := fs.Duration("duration", 0, "video: stop after this much video")
	socket := fs.String("socket", "", "daemon socket (default $AZAION_SOCKET or "+api.DefaultSocket+")")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion detect [flags] IMAGE|VIDEO...")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErrorf("no images given: azaion detect [flags] IMAGE|VIDEO...")
	}
	opts := api.DetectOptions{Model: *model, Conf: *conf, IoU: *iou, MaxDet: *maxDet}
	if *classes != "" {
		for _, f := range strings.Split(*classes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return usageErrorf("-classes %q: want comma-separated integers", *classes)
			}
			opts.Classes = append(opts.Classes, n)
		}
	}
	c := api.FromEnv()
	if *socket != "" {
		c = api.NewSocketClient(*socket)
	}
	var images []string
	var videos []string
	for _, f := range fs.Args() {
		if isVideo(f) {
			videos = append(videos, f)
		} else {
			images = append(images, f)
		}
	}
	if *out != "" && len(videos) != 1 {
		return usageErrorf("--out needs exactly one video (got %d)", len(videos))
	}
	var imgErr error
	if len(images) > 0 {
		imgErr = detectFiles(ctx, c, images, opts, *asJSON, os.Stdout)
		if len(videos) == 0 {
			return imgErr
		}
	}
	var progress io.Writer
	if !*asJSON && isTerminal(os.Stderr) {
		progress = os.Stderr
	}
	failed := 0
	for _, v := range videos {
		err := detectVideo(ctx, c, videoRun{file: v, out: *out, asJSON: *asJSON, stdout: os.Stdout, progress: progress,
			opts: api.VideoOptions{DetectOptions: opts, Every: *every, Start: *start, Duration: *duration}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", v, err)
			failed++
		}
	}
	switch {
	case imgErr != nil && failed > 0:
		return fmt.Errorf("%v; %d of %d videos failed", imgErr, failed, len(videos))
	case imgErr != nil:
		return imgErr
	case failed > 0:
		return fmt.Errorf("%d of %d videos failed", failed, len(videos))
	}
	return nil
}

func detectFiles(ctx context.Context, c *api.Client, files []string, opts api.DetectOptions, asJSON bool, out io.Writer) error {
	failed := 0
	enc := json.NewEncoder(out)
	for _, f := range files {
		img, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			failed++
			continue
		}
		res, err := c.Detect(ctx, img, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			failed++
			continue
		}
		if asJSON {
			if err := enc.Encode(struct {
				File string `json:"file"`
				*api.DetectResponse
			}{f, res}); err != nil {
				return err
			}
			continue
		}
		printTable(out, f, res)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images failed", failed, len(files))
	}
	return nil
}

func printTable(out io.Writer, file string, r *api.DetectResponse) {
	fmt.Fprintf(out, "%s: %dx%d, model %s, %d detections, %.1f ms (infer %.1f ms)\n",
		file, r.Image.Width, r.Image.Height, r.Model, len(r.Detections), r.TimingsMS.Total, r.TimingsMS.Infer)
	if len(r.Detections) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CLASS\tLABEL\tSCORE\tX1\tY1\tX2\tY2")
	for _, d := range r.Detections {
		label := d.Label
		if d.Weather != "" {
			label += " (" + d.Weather + ")"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\n", d.ClassID, label, d.Score, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2)
	}
	tw.Flush()
}
