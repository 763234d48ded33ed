// Package videotest makes the inputs of the video tests and benchmarks with
// Debian's ffmpeg from the shared test photo (bus.jpg): clips that pan and
// zoom over it, frames extracted from them, truncated and re-tagged copies;
// and it runs a real RTSP server (GStreamer's gst-rtsp-server, through
// PyGObject and Debian's /usr/bin/python3) that serves a clip in a loop. It
// is imported only by tests; a missing tool fails the test with a hint.
package videotest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/azaion/edge/internal/testenv"
)

// Clip describes a generated test clip.
type Clip struct {
	// Width and Height of the frames (default 640x360).
	Width, Height int
	// Frames is the number of frames (default 24); FPS the frame rate (default 30).
	Frames, FPS int
	// Codec is an ffmpeg encoder: libx264 (default) or mpeg4.
	Codec string
	// Format is the container: mp4 (default, with the index at the front)
	// or h264 (a raw Annex B stream, what the RTSP server serves).
	Format string
	// Zoom is the zoom added per frame (default 0.003): the clip pans and
	// zooms in on the photo so that consecutive frames differ.
	Zoom float64
}

func (c Clip) withDefaults() Clip {
	if c.Width == 0 {
		c.Width, c.Height = 640, 360
	}
	if c.Frames == 0 {
		c.Frames = 24
	}
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.Codec == "" {
		c.Codec = "libx264"
	}
	if c.Format == "" {
		c.Format = "mp4"
	}
	if c.Zoom == 0 {
		c.Zoom = 0.003
	}
	return c
}

var clipMu sync.Mutex

// Make returns the path of the clip, generating it with ffmpeg on first use.
// Clips are cached under $AZAION_CACHE/clips (default
// ~/.cache/azaion-edge/clips), keyed by their description and the photo's
// content, and written atomically; treat them as read-only.
func Make(t testing.TB, c Clip) string {
	t.Helper()
	c = c.withDefaults()
	need(t, "ffmpeg")
	photo := testenv.Model(t, "images/bus.jpg")
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(img, fmt.Sprintf("%+v/v1", c)...))
	dir := cacheDir(t)
	ext := c.Format
	path := filepath.Join(dir, fmt.Sprintf("bus-%dx%d-%df-%s-%s.%s", c.Width, c.Height, c.Frames, c.Codec, hex.EncodeToString(sum[:6]), ext))
	clipMu.Lock()
	defer clipMu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	// Pad the portrait photo to the clip's aspect ratio (grey), then pan
	// and zoom over it.
	filter := fmt.Sprintf("[0]pad=w='max(iw,ih*%d/%d)':h='max(ih,iw*%d/%d)':x=(ow-iw)/2:y=(oh-ih)/2:color=0x808080,"+
		"zoompan=z='1+%g*on':x='iw/2-iw/zoom/2+on':y='ih/2-ih/zoom/2':d=1:s=%dx%d:fps=%d,format=yuv420p",
		c.Width, c.Height, c.Height, c.Width, c.Zoom, c.Width, c.Height, c.FPS)
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid()) + "." + ext
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate", strconv.Itoa(c.FPS),
		"-i", photo, "-filter_complex", filter, "-frames:v", strconv.Itoa(c.Frames), "-c:v", c.Codec}
	switch c.Codec {
	case "libx264":
		// No B-frames: a raw stream then carries the timestamps the RTSP
		// server needs; a keyframe every second.
		args = append(args, "-preset", "veryfast", "-bf", "0", "-g", strconv.Itoa(c.FPS))
	case "mpeg4":
		args = append(args, "-q:v", "3")
	}
	switch c.Format {
	case "mp4":
		args = append(args, "-movflags", "+faststart", "-f", "mp4")
	case "h264":
		args = append(args, "-bsf:v", "h264_mp4toannexb", "-f", "h264")
	default:
		t.Fatalf("videotest: unknown format %q", c.Format)
	}
	run(t, "ffmpeg", append(args, tmp)...)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func cacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AZAION_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, ".cache", "azaion-edge")
	}
	dir = filepath.Join(dir, "clips")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Extract returns frame n (0-based) of a video as a PNG, decoded by ffmpeg.
func Extract(t testing.TB, video string, n int) []byte {
	t.Helper()
	return run(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", video,
		"-vf", fmt.Sprintf(`select=eq(n\,%d)`, n), "-fps_mode", "passthrough", "-frames:v", "1",
		"-f", "image2pipe", "-c:v", "png", "pipe:1")
}

// RawFrame returns frame n of a video as packed RGB24 pixels, decoded by ffmpeg.
func RawFrame(t testing.TB, video string, n int) (w, h int, rgb []byte) {
	t.Helper()
	s := probe(t, video, false)
	rgb = run(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", video,
		"-vf", fmt.Sprintf(`select=eq(n\,%d)`, n), "-fps_mode", "passthrough", "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	if len(rgb) != s.Width*s.Height*3 {
		t.Fatalf("videotest: frame %d of %s: %d bytes, want %dx%dx3", n, video, len(rgb), s.Width, s.Height)
	}
	return s.Width, s.Height, rgb
}

// Stream is what ffprobe says about a video's first video stream, with the
// frames counted by decoding them all.
type Stream struct {
	Codec         string
	Width, Height int
	Frames        int
}

// Probe runs ffprobe on a video, counting its frames by decoding them.
func Probe(t testing.TB, video string) Stream {
	t.Helper()
	return probe(t, video, true)
}

func probe(t testing.TB, video string, count bool) Stream {
	t.Helper()
	need(t, "ffprobe")
	args := []string{"-v", "error", "-select_streams", "v:0"}
	if count {
		args = append(args, "-count_frames")
	}
	out := run(t, "ffprobe", append(args, "-show_entries", "stream=codec_name,width,height,nb_read_frames",
		"-of", "default=noprint_wrappers=1", video)...)
	var s Stream
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "codec_name":
			s.Codec = v
		case "width":
			s.Width, _ = strconv.Atoi(v)
		case "height":
			s.Height, _ = strconv.Atoi(v)
		case "nb_read_frames":
			s.Frames, _ = strconv.Atoi(v)
		}
	}
	return s
}

// Truncate writes the first fraction keep (0..1) of a file's bytes to a new
// file in the test's temporary folder and returns its path.
func Truncate(t testing.TB, src string, keep float64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "truncated-"+filepath.Base(src))
	if err := os.WriteFile(dst, b[:int(float64(len(b))*keep)], 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Retag copies an MP4 file with its video sample entry's FourCC (e.g.
// "avc1") replaced by another ("zzzz"), which makes a file whose codec no
// decoder knows; it fails the test when from occurs other than once.
func Retag(t testing.TB, src, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// The sample entry sits in the stsd box: "stsd" + version/flags +
	// entry count + entry size + the FourCC.
	i := bytes.Index(b, []byte("stsd"))
	if i < 0 || len(from) != 4 || len(to) != 4 {
		t.Fatalf("videotest: %s has no stsd box, or the FourCCs are not 4 bytes", src)
	}
	j := i + 4 + 4 + 4 + 4
	if j+4 > len(b) || string(b[j:j+4]) != from {
		t.Fatalf("videotest: %s: sample entry is %q, want %q", src, b[j:min(j+4, len(b))], from)
	}
	out := bytes.Clone(b)
	copy(out[j:], to)
	dst := filepath.Join(t.TempDir(), "retagged-"+filepath.Base(src))
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func need(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("videotest: %s not found (run `make deps`: scripts/deps/40-video.sh installs it): %v", tool, err)
	}
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	need(t, name)
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("videotest: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
