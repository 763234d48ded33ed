package video

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/videosrc"
)

// CaptureOptionsEnv is the environment variable through which OpenCV's
// FFmpeg backend takes the options of every capture it opens.
const CaptureOptionsEnv = "OPENCV_FFMPEG_CAPTURE_OPTIONS"

// CaptureOptions are the FFmpeg options set for every capture (unless the
// plugin's environment already sets CaptureOptionsEnv): RTSP over TCP, a
// 5-second socket timeout (a stream that stops answering fails instead of
// hanging), and a one-second stream probe (FFmpeg's default of five seconds
// delays every connection and then delivers the frames it buffered in a
// burst).
const CaptureOptions = "rtsp_transport;tcp|timeout;5000000|analyzeduration;1000000"

var setupOnce sync.Once

// setup sets the capture options once per process, before the first open.
func setup() {
	if _, ok := os.LookupEnv(CaptureOptionsEnv); !ok {
		_ = os.Setenv(CaptureOptionsEnv, CaptureOptions)
	}
}

// Frame is where a decoded frame sits in its source.
type Frame struct {
	// Index is the frame's 0-based index in the file, or the number of
	// frames read from a stream before it.
	Index int64
	// PTS is the frame's presentation time (files), or the time since the
	// stream was opened (streams).
	PTS time.Duration
	// Time is when it was decoded.
	Time time.Time
}

// Capture reads frames from a video file or stream with OpenCV's
// VideoCapture and its FFmpeg backend. It is not safe for concurrent use.
type Capture struct {
	vc     *gocv.VideoCapture
	stream bool
	fps    float64
	opened time.Time
	next   int64
}

// Open opens src, a video file or a stream URL, with the FFmpeg backend.
// Opening a stream can take up to the socket timeout; when ctx ends first,
// Open returns at once and the capture is closed in the background.
func Open(ctx context.Context, src string) (*Capture, error) {
	setupOnce.Do(setup)
	type result struct {
		vc  *gocv.VideoCapture
		err error
	}
	ch := make(chan result, 1)
	go func() {
		vc, err := gocv.VideoCaptureFileWithAPI(src, gocv.VideoCaptureFFmpeg)
		if err == nil && !vc.IsOpened() {
			err = fmt.Errorf("not opened")
		}
		if err != nil && vc != nil {
			vc.Close()
			vc = nil
		}
		ch <- result{vc, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.vc != nil {
				r.vc.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		// gocv's message quotes the source, credentials included: say it
		// again without them.
		what := "file"
		if videosrc.IsStream(src) {
			what = "stream " + videosrc.Redact(src)
		}
		return nil, fmt.Errorf("%w: OpenCV's FFmpeg backend cannot open the %s", ErrOpen, what)
	}
	c := &Capture{vc: r.vc, stream: videosrc.IsStream(src), opened: time.Now()}
	c.fps = c.vc.Get(gocv.VideoCaptureFPS)
	return c, nil
}

// Close releases the capture.
func (c *Capture) Close() {
	if c != nil && c.vc != nil {
		c.vc.Close()
		c.vc = nil
	}
}

// Size is the frame size the capture reports.
func (c *Capture) Size() (w, h int) {
	return int(c.vc.Get(gocv.VideoCaptureFrameWidth)), int(c.vc.Get(gocv.VideoCaptureFrameHeight))
}

// FPS is the frame rate the capture reports (0 when unknown).
func (c *Capture) FPS() float64 { return c.fps }

// SeekFrame positions a file at frame n (OpenCV seeks to the keyframe before it
// and decodes up to it).
func (c *Capture) SeekFrame(n int64) error {
	if n <= 0 {
		return nil
	}
	c.vc.Set(gocv.VideoCapturePosFrames, float64(n))
	got := int64(c.vc.Get(gocv.VideoCapturePosFrames))
	if got != n {
		return fmt.Errorf("seek to frame %d landed on frame %d", n, got)
	}
	c.next = n
	return nil
}

// Read decodes the next frame into m (8-bit BGR); false at the end of the
// source or on an error.
func (c *Capture) Read(m *gocv.Mat) (Frame, bool) {
	if !c.vc.Read(m) || m.Empty() {
		return Frame{}, false
	}
	return c.advance(), true
}

// Grab decodes the next frame without converting it to BGR (for frames
// that are only counted); false at the end of the source or on an error.
func (c *Capture) Grab() (Frame, bool) {
	before := c.vc.Get(gocv.VideoCapturePosFrames)
	c.vc.Grab(1)
	// gocv's Grab reports nothing; OpenCV counts only decoded frames.
	if c.vc.Get(gocv.VideoCapturePosFrames) <= before {
		return Frame{}, false
	}
	return c.advance(), true
}

func (c *Capture) advance() Frame {
	f := Frame{Index: c.next, Time: time.Now()}
	c.next++
	if c.stream {
		f.PTS = f.Time.Sub(c.opened)
		return f
	}
	f.PTS = time.Duration(c.vc.Get(gocv.VideoCapturePosMsec) * float64(time.Millisecond))
	if f.PTS == 0 && f.Index > 0 && c.fps > 0 {
		f.PTS = time.Duration(float64(f.Index) / c.fps * float64(time.Second))
	}
	return f
}
