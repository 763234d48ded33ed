package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/azaion/edge/daemon/cmd/azaion/internal/datatools"
	"github.com/azaion/edge/sdk/api"
)

func init() {
	register(&command{Name: "dataset build", Summary: "form datasets/azaion-YYYY-MM-DD/ (train/valid/test + data.yaml) with the running daemon", Run: runDatasetBuild})
	register(&command{Name: "dataset show", Summary: "render a folder of images + YOLO labels as a contact-sheet PNG and an HTML gallery", Run: runDatasetShow})
}

func runDatasetBuild(ctx context.Context, args []string) error {
	fs := newFlags("dataset build")
	fs.Int64("seed", 0, "split seed (default from the daemon's config)")
	split := fs.String("split", "", "train/valid/test percentages, e.g. 70/20/10 (default from the daemon's config)")
	fs.String("name", "", "dataset folder name under datasets/ (default azaion-YYYY-MM-DD)")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := setFlags(fs, map[string]string{"seed": "seed", "name": "name"})
	if *split != "" {
		f := strings.Split(*split, "/")
		if len(f) != 3 {
			return usageErrorf("-split %q: want TRAIN/VALID/TEST percentages, e.g. 70/20/10", *split)
		}
		for i, k := range []string{"train", "valid", "test"} {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil || v < 0 {
				return usageErrorf("-split %q: %q is not a percentage", *split, f[i])
			}
			set[k] = v / 100
		}
	}
	params, err := jf.jobParams(set)
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobDataset, Params: params}, *jf.detach, os.Stdout, os.Stderr)
}

func runDatasetShow(_ context.Context, args []string) error {
	fs := newFlags("dataset show")
	out := fs.String("out", "", "folder for contact-sheet.png and index.html (default DIR)")
	maxN := fs.Int("max", 64, "most images shown")
	cols := fs.Int("cols", 6, "thumbnails per row")
	thumb := fs.Int("thumb", 320, "thumbnail width in pixels")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion dataset show [flags] DIR\n\nDIR holds images/ and labels/ (or is a dataset with train/, valid/, test/).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one folder: azaion dataset show [flags] DIR")
	}
	res, err := datatools.Show(fs.Arg(0), datatools.ShowOptions{Out: *out, Max: *maxN, Cols: *cols, Thumb: *thumb})
	if err != nil {
		return err
	}
	fmt.Printf("%d images: %s (%dx%d), %s\n", res.Images, res.PNG, res.Size.X, res.Size.Y, res.HTML)
	return nil
}
