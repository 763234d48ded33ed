package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/videosrc"
)

// videoExts are the file extensions detect treats as video without looking inside.
var videoExts = map[string]bool{
	".mp4": true, ".m4v": true, ".mov": true, ".mkv": true, ".webm": true, ".avi": true, ".ts": true, ".mts": true,
	".m2ts": true, ".mpg": true, ".mpeg": true, ".flv": true, ".wmv": true, ".asf": true, ".ogv": true, ".3gp": true,
	".h264": true, ".264": true, ".h265": true, ".265": true, ".hevc": true,
}

// isVideo tells a video from an image by its extension, else by its first bytes.
func isVideo(path string) bool {
	if videoExts[strings.ToLower(filepath.Ext(path))] {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return videosrc.Format(head[:n]) != ""
}

// videoRun is one video sent to the daemon by `azaion detect`.
type videoRun struct {
	file     string
	opts     api.VideoOptions
	out      string // --out: where to save the annotated video
	asJSON   bool
	stdout   io.Writer
	progress io.Writer // nil: no progress bar
}

// detectVideo streams one video to the daemon, printing the NDJSON answer
// (--json) or a progress bar and a summary, and saves the annotated video
// with --out.
func detectVideo(ctx context.Context, c *api.Client, v videoRun) error {
	f, err := os.Open(v.file)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := v.opts
	opts.Annotate = v.out != ""
	var header *api.VideoHeader
	var summary *api.VideoSummary
	labels := map[string]int{}
	frames := 0
	bar := &videoBar{w: v.progress, name: filepath.Base(v.file), start: time.Now()}
	err = c.DetectVideo(ctx, f, opts, func(l api.VideoLine) error {
		if v.asJSON {
			if _, err := fmt.Fprintf(v.stdout, "%s\n", l.Raw); err != nil {
				return err
			}
		}
		switch {
		case l.Video != nil:
			header = l.Video
			bar.total = header.ToDecode
			bar.first = header.FirstFrame
		case l.Frame != nil:
			frames++
			for _, d := range l.Detections {
				labels[d.Label]++
			}
			bar.update(*l.Frame, frames)
		case l.Summary != nil:
			summary = l.Summary
		}
		return nil
	})
	bar.done()
	if err != nil {
		return err
	}
	if !v.asJSON {
		printVideoSummary(v.stdout, v.file, header, summary, labels)
	}
	if summary.Output != nil && v.out != "" {
		if err := saveOutput(ctx, c, summary.Output.ID, v.out); err != nil {
			return err
		}
		if !v.asJSON {
			fmt.Fprintf(v.stdout, "  annotated video: %s (%d frames)\n", v.out, summary.FramesWritten)
		}
	}
	if summary.Error != "" {
		return fmt.Errorf("%s: %s", v.file, summary.Error)
	}
	return nil
}

// saveOutput downloads an output to path atomically (temp file + rename).
func saveOutput(ctx context.Context, c *api.Client, id, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := c.Output(ctx, id, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("fetch the annotated video: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func printVideoSummary(w io.Writer, file string, h *api.VideoHeader, s *api.VideoSummary, labels map[string]int) {
	if h == nil || s == nil {
		return
	}
	fmt.Fprintf(w, "%s: %dx%d %s, model %s, every %d: %d frames decoded, %d processed in %.1f s (%.1f fps processed, %.1f decoded, batches up to %d)\n",
		file, h.Width, h.Height, h.Codec, h.Model, h.Every, s.FramesDecoded, s.FramesProcessed, s.WallMS/1000, s.FPS, s.DecodedFPS, s.MaxBatch)
	if len(labels) > 0 {
		names := make([]string, 0, len(labels))
		for n := range labels {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return labels[names[i]] > labels[names[j]] || labels[names[i]] == labels[names[j]] && names[i] < names[j]
		})
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, labels[n])
		}
		fmt.Fprintf(w, "  detections: %s\n", strings.Join(parts, ", "))
	}
	st := s.StagesMS
	fmt.Fprintf(w, "  stages: decode %.0f ms, preprocess %.0f ms, queue %.0f ms, infer %.0f ms, postprocess %.0f ms", st.Decode, st.Preprocess, st.Queue, st.Infer, st.Postprocess)
	if st.Write > 0 {
		fmt.Fprintf(w, ", write %.0f ms", st.Write)
	}
	fmt.Fprintln(w)
}

// videoBar draws "[#####.....]  42%  52/120 frames  31.2 fps  ETA 0:02  clip.mp4"
// in place on a terminal, as the job progress bar does.
type videoBar struct {
	w            io.Writer // nil: no bar
	name         string
	total, first int64
	start, last  time.Time
	drawn        bool
}

func (b *videoBar) update(frame int64, processed int) {
	if b.w == nil || time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	fmt.Fprintf(b.w, "\r%s\x1b[K", renderVideoProgress(b.name, frame-b.first+1, b.total, processed, time.Since(b.start), 30))
	b.drawn = true
}

func (b *videoBar) done() {
	if b.w != nil && b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
}

// renderVideoProgress renders one progress line: done of total frames (total
// 0 when unknown) with a bar of width cells, the processed frames per
// second and the time left.
func renderVideoProgress(name string, done, total int64, processed int, elapsed time.Duration, width int) string {
	fps := 0.0
	if s := elapsed.Seconds(); s > 0 {
		fps = float64(processed) / s
	}
	if total <= 0 {
		return fmt.Sprintf("frame %d  %.1f fps  %s", done, fps, name)
	}
	done = min(max(done, 0), total)
	p := float64(done) / float64(total)
	n := int(p*float64(width) + 0.5)
	eta := "?"
	if p > 0 {
		eta = formatETA(elapsed.Seconds() * (1 - p) / p)
	}
	return fmt.Sprintf("[%s%s] %3.0f%%  %d/%d frames  %.1f fps  ETA %s  %s",
		strings.Repeat("#", n), strings.Repeat(".", width-n), p*100, done, total, fps, eta, name)
}
