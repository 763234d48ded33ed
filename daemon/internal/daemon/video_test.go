package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/internal/videotest"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/yolo/yolotest"
)

// videoAnswer is a whole NDJSON answer of POST /v1/detect/video.
type videoAnswer struct {
	header  *api.VideoHeader
	frames  []api.VideoLine
	summary *api.VideoSummary
}

func postVideo(t *testing.T, c *api.Client, body io.Reader, o api.VideoOptions) (*videoAnswer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := &videoAnswer{}
	err := c.DetectVideo(ctx, body, o, func(l api.VideoLine) error {
		switch {
		case l.Video != nil:
			a.header = l.Video
		case l.Frame != nil:
			a.frames = append(a.frames, l)
		case l.Summary != nil:
			a.summary = l.Summary
		}
		return nil
	})
	return a, err
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestVideo runs POST /v1/detect/video end to end through the real ONNX
// plugin on clips made with ffmpeg.
func TestVideo(t *testing.T) {
	media := t.TempDir()
	h := startDaemon(t, []string{"yolo11n_dequant_fp32.onnx"}, func(c *config.Config) {
		c.Video.MediaDir = media
		c.Video.MaxJobs = 1
		c.Video.MaxFrames = 150
		c.Video.OutputTTL = 2 * time.Second
		c.Video.MaxUploadBytes = 4 << 20
	})
	hd := videotest.Make(t, videotest.Clip{Width: 1920, Height: 1080, Frames: 120})
	small := videotest.Make(t, videotest.Clip{})
	// A copy: a symbolic link out of the media folder is refused.
	if b, err := os.ReadFile(small); err != nil || os.WriteFile(filepath.Join(media, "small.mp4"), b, 0o644) != nil {
		t.Fatalf("copy the clip into the media folder: %v", err)
	}
	if err := os.Symlink(small, filepath.Join(media, "link.mp4")); err != nil {
		t.Fatal(err)
	}

	t.Run("1080p", func(t *testing.T) {
		a, err := postVideo(t, h.http, openFile(t, hd), api.VideoOptions{Every: 4, Annotate: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.header == nil || a.header.Width != 1920 || a.header.Height != 1080 || a.header.Frames != 120 || a.header.Every != 4 || a.header.Codec != "h264" {
			t.Fatalf("header %+v: want 1920x1080 h264, 120 frames, every 4", a.header)
		}
		if len(a.frames) != 30 { // ceil(120/4)
			t.Fatalf("%d result lines for 120 frames at every 4, want 30", len(a.frames))
		}
		for i, f := range a.frames {
			if *f.Frame != int64(4*i) {
				t.Fatalf("line %d is frame %d, want %d", i, *f.Frame, 4*i)
			}
		}
		s := a.summary
		if s.FramesDecoded != 120 || s.FramesProcessed != 30 || s.FramesWritten != 120 || s.Error != "" || s.Output == nil {
			t.Fatalf("summary %+v: want 120 decoded, 30 processed, 120 written, an output", s)
		}
		if s.MaxBatch != 4 || a.header.MaxBatch != 4 {
			t.Errorf("batches up to %d (header says %d), want the model's 4", s.MaxBatch, a.header.MaxBatch)
		}
		// The annotated video: fetched, decodes, has the input's frames and
		// size, and shows the class colour along a detected box's edges, on
		// the processed frame and on the skipped frames after it.
		out := filepath.Join(t.TempDir(), "out.mp4")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.http.Output(context.Background(), s.Output.ID, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		// Detections equal those of /v1/detect on the same frames extracted by ffmpeg.
		for _, n := range []int{0, 56, 116} {
			img := videotest.Extract(t, hd, n)
			res, err := h.http.Detect(context.Background(), img, api.DetectOptions{})
			if err != nil {
				t.Fatalf("detect frame %d as an image: %v", n, err)
			}
			if len(res.Detections) == 0 {
				t.Fatalf("frame %d: no detections: a useless comparison", n)
			}
			if err := yolotest.ComparePair(yolotest.FromAPI(a.frames[n/4].Detections), yolotest.FromAPI(res.Detections)); err != nil {
				t.Errorf("frame %d, video vs /v1/detect: %v", n, err)
			}
		}

		st := videotest.Probe(t, out)
		if st.Frames != 120 || st.Width != 1920 || st.Height != 1080 {
			t.Fatalf("annotated video %+v: want 120 frames of 1920x1080", st)
		}
		line := a.frames[10] // frame 40
		d := biggest(line.Detections)
		lw := max(2, int(float64(1920+1080)/2*0.003+0.5))
		for _, n := range []int{40, 42} {
			_, _, rgb := videotest.RawFrame(t, out, n)
			_, _, orig := videotest.RawFrame(t, hd, n)
			want := classColor(d.ClassID)
			got, base := edgeShare(rgb, 1920, d.Box, lw, want), edgeShare(orig, 1920, d.Box, lw, want)
			if got < 0.6 || base > 0.2 {
				t.Errorf("frame %d: %.0f%% of the edge of the %s box has its colour %v (%.0f%% before drawing), want most", n, got*100, d.Label, want, base*100)
			}
		}

		// Outputs expire.
		waitFor(t, 10*time.Second, "output expired", func() error {
			_, err := h.http.Output(context.Background(), s.Output.ID, io.Discard)
			if api.IsStatus(err, http.StatusNotFound) {
				return nil
			}
			return fmt.Errorf("GET output: %v", err)
		})
	})

	t.Run("MediaPathAndMultipart", func(t *testing.T) {
		a, err := postVideo(t, h.sock, nil, api.VideoOptions{Path: "small.mp4", Every: 5, Start: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if a.header.FirstFrame != 3 || len(a.frames) != 5 || *a.frames[0].Frame != 3 || a.summary.FramesDecoded != 21 {
			t.Fatalf("path request: header %+v, %d lines, summary %+v: want frames 3..23 every 5", a.header, len(a.frames), a.summary)
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("every", "6")
		fw, _ := mw.CreateFormFile("video", "small.mp4")
		b, _ := os.ReadFile(small)
		_, _ = fw.Write(b)
		_ = mw.WriteField("conf", "0.5")
		mw.Close()
		resp, err := http.Post(h.base+"/v1/detect/video", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n := 0
		err = api.ReadVideo(resp.Body, func(l api.VideoLine) error {
			if l.Frame != nil {
				n++
				for _, d := range l.Detections {
					if d.Score < 0.5 {
						return fmt.Errorf("detection %+v under conf 0.5", d)
					}
				}
			}
			return nil
		})
		if err != nil || n != 4 {
			t.Fatalf("multipart: %d lines (want 4 for 24 frames at every 6): %v", n, err)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		post := func(path string, body []byte) (int, string) {
			resp, err := http.Post(h.base+path, "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		retagged, _ := os.ReadFile(videotest.Retag(t, small, "avc1", "zzzz"))
		long, _ := os.ReadFile(videotest.Make(t, videotest.Clip{Frames: 200}))
		if err := os.WriteFile(filepath.Join(media, "notes.txt"), []byte("not a video"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, path string
			body       []byte
			status     int
			want       string
		}{
			{"text", "/v1/detect/video", []byte("hello, this is not a video at all\n"), 415, "not a video"},
			{"jpeg", "/v1/detect/video", busJPEG(t), 415, "image/jpeg"},
			{"codec", "/v1/detect/video", retagged, 422, "zzzz"},
			{"empty", "/v1/detect/video", nil, 400, "empty body"},
			{"too big", "/v1/detect/video", append(retagged, make([]byte, 5<<20)...), 413, "upload limit"},
			{"too long", "/v1/detect/video", long, 422, "over the limit of 150"},
			{"bad every", "/v1/detect/video?every=0", long, 400, "every"},
			{"outside media", "/v1/detect/video?path=../../../etc/passwd", nil, 403, "outside the media folder"},
			{"link out of media", "/v1/detect/video?path=link.mp4", nil, 403, "outside the media folder"},
			{"absolute", "/v1/detect/video?path=" + small, nil, 403, "outside the media folder"},
			{"missing", "/v1/detect/video?path=nope.mp4", nil, 404, "not in the media folder"},
			{"media not video", "/v1/detect/video?path=notes.txt", nil, 415, "not a video"},
			{"start past end", "/v1/detect/video?path=small.mp4&start=10", nil, 422, "past the end"},
		} {
			status, body := post(tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d %s, want %d saying %q", tc.name, status, body, tc.status, tc.want)
			}
		}
		// The long clip within the limit, by duration.
		a, err := postVideo(t, h.http, bytes.NewReader(long), api.VideoOptions{Every: 10, Duration: 4 * time.Second})
		if err != nil || a.summary.FramesDecoded != 120 || len(a.frames) != 12 {
			t.Fatalf("long clip cut to 4s: %v %+v", err, a.summary)
		}
		// A truncated file: the frames that decode are processed and the
		// summary says what went wrong.
		a, err = postVideo(t, h.http, openFile(t, videotest.Truncate(t, small, 0.5)), api.VideoOptions{Every: 2})
		if err != nil {
			t.Fatal(err)
		}
		s := a.summary
		if s.FramesDecoded == 0 || s.FramesDecoded >= 24 || !strings.Contains(s.Error, "truncated") || int64(len(a.frames)) != (s.FramesDecoded+1)/2 {
			t.Fatalf("truncated: %d lines, summary %+v", len(a.frames), s)
		}
	})

	t.Run("DisconnectAndLimit", func(t *testing.T) {
		b, err := h.d.backends.Backend("onnx")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lines := make(chan api.VideoLine, 256)
		done := make(chan error, 1)
		go func() {
			done <- h.http.DetectVideo(ctx, openFile(t, hd), api.VideoOptions{Every: 1}, func(l api.VideoLine) error {
				lines <- l
				return nil
			})
		}()
		for frames := 0; frames < 2; {
			select {
			case l := <-lines:
				if l.Frame != nil {
					frames++
				}
			case err := <-done:
				t.Fatalf("video ended early: %v", err)
			case <-time.After(time.Minute):
				t.Fatal("no frames within a minute")
			}
		}
		// One video at a time (video.max_jobs 1): a second is refused.
		_, err = postVideo(t, h.http, openFile(t, small), api.VideoOptions{})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests || se.RetryAfter == 0 {
			t.Fatalf("second video while one runs: %v, want 429 with Retry-After", err)
		}
		cancel()
		gone := time.Now()
		<-done
		for {
			st, err := b.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Videos == 0 {
				break
			}
			if time.Since(gone) > time.Second {
				t.Fatalf("the plugin still decodes %d videos %s after the client went away", st.Videos, time.Since(gone))
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The slot is free again.
		waitFor(t, 5*time.Second, "video slot freed", func() error {
			_, err := postVideo(t, h.http, openFile(t, small), api.VideoOptions{Every: 24})
			return err
		})
	})
}

// biggest returns the largest detection scoring at least 0.5.
func biggest(ds []api.Detection) api.Detection {
	var best api.Detection
	area := 0.0
	for _, d := range ds {
		if a := (d.Box.X2 - d.Box.X1) * (d.Box.Y2 - d.Box.Y1); d.Score >= 0.5 && a > area {
			best, area = d, a
		}
	}
	return best
}

// classColor is the colour boxes of a class are drawn in (Ultralytics' palette, as plugins/internal/video draws them).
func classColor(id int) color.RGBA {
	p := []uint32{0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17, 0x3DDB86, 0x1A9334, 0x00D4BB,
		0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF, 0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7}
	c := p[id%len(p)]
	return color.RGBA{uint8(c >> 16), uint8(c >> 8), uint8(c), 255}
}

// edgeShare is the share of pixels on the left, right and bottom edges of a
// box (the top one carries the label) whose colour is near c.
func edgeShare(rgb []byte, w int, b api.Box, lw int, c color.RGBA) float64 {
	near := func(x, y int) bool {
		i := (y*w + x) * 3
		d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
		return d(rgb[i], c.R) < 60 && d(rgb[i+1], c.G) < 60 && d(rgb[i+2], c.B) < 60
	}
	x1, y1, x2, y2 := int(b.X1+0.5), int(b.Y1+0.5), int(b.X2+0.5), int(b.Y2+0.5)
	h := len(rgb) / 3 / w
	hit, n := 0, 0
	count := func(x, y int) {
		if x < 0 || y < 0 || x >= w || y >= h {
			return
		}
		n++
		if near(x, y) {
			hit++
		}
	}
	for y := y1 + 2*lw; y < y2-lw; y += 3 {
		count(x1, y)
		count(x2, y)
	}
	for x := x1 + lw; x < x2-lw; x += 3 {
		count(x, y2)
	}
	if n == 0 {
		return 0
	}
	return float64(hit) / float64(n)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
