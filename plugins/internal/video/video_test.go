package video

import (
	"context"
	"errors"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/internal/videotest"
	"github.com/azaion/edge/sdk/yolo"
)

func TestProbe(t *testing.T) {
	clip := videotest.Make(t, videotest.Clip{})
	in, err := Probe(clip)
	if err != nil {
		t.Fatal(err)
	}
	if in.Width != 640 || in.Height != 360 || in.Frames != 24 || in.FPS != 30 || in.Codec != "h264" || in.Tag != "avc1" || !strings.Contains(in.Container, "mp4") {
		t.Fatalf("probe %+v", in)
	}
	if d := in.Duration; d < 790*time.Millisecond || d > 810*time.Millisecond {
		t.Errorf("duration %s, want 0.8s", d)
	}
	m4, err := Probe(videotest.Make(t, videotest.Clip{Codec: "mpeg4"}))
	if err != nil || m4.Codec != "mpeg4" {
		t.Fatalf("mpeg4 clip: %+v %v", m4, err)
	}
	text := filepath.Join(t.TempDir(), "notes.mp4")
	os.WriteFile(text, []byte("not a video\n"), 0o644)
	for _, tc := range []struct {
		path string
		want error
		msg  string
	}{
		{videotest.Retag(t, clip, "avc1", "zzzz"), ErrCodec, `"zzzz"`},
		{text, ErrNotVideo, "not a video container"},
		{videotest.Truncate(t, clip, 0.002), ErrNotVideo, "not a video"},
	} {
		_, err := Probe(tc.path)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v saying %s", filepath.Base(tc.path), err, tc.want, tc.msg)
		}
	}
}

// TestCapture: Read and Grab count every frame (Grab's end is detected),
// timestamps follow the frame rate, and SeekFrame lands on its frame.
func TestCapture(t *testing.T) {
	clip := videotest.Make(t, videotest.Clip{})
	c, err := Open(context.Background(), clip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if w, h := c.Size(); w != 640 || h != 360 || c.FPS() != 30 {
		t.Fatalf("size %dx%d at %v fps", w, h, c.FPS())
	}
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for {
		var f Frame
		var ok bool
		if n%3 == 0 {
			f, ok = c.Read(&m)
		} else {
			f, ok = c.Grab()
		}
		if !ok {
			break
		}
		if f.Index != int64(n) || absDur(f.PTS-time.Duration(n)*time.Second/30) > time.Millisecond {
			t.Fatalf("frame %d: %+v", n, f)
		}
		n++
	}
	if n != 24 {
		t.Fatalf("%d frames, want 24", n)
	}
	c2, err := Open(context.Background(), clip)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.SeekFrame(10); err != nil {
		t.Fatal(err)
	}
	if f, ok := c2.Read(&m); !ok || f.Index != 10 || absDur(f.PTS-time.Second/3) > time.Millisecond {
		t.Fatalf("after seeking to 10: %+v %v", f, ok)
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing.mp4")); !errors.Is(err, ErrOpen) {
		t.Fatalf("missing file: %v", err)
	}
	// A stream URL's credentials stay out of the error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, "rtsp://cam:hunter2@127.0.0.1:1/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("closed port: %v", err)
	}
}

func TestDraw(t *testing.T) {
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 360, 640, gocv.MatTypeCV8UC3)
	defer frame.Close()
	d := yolo.Detection{ClassID: 5, Score: 0.9, Box: yolo.Box{X1: 100, Y1: 100, X2: 300, Y2: 250}}
	Draw(&frame, []yolo.Detection{d}, []string{"a", "b", "c", "d", "e", "bus"}, LineWidth(640, 360))
	want := Color(5)
	at := func(x, y int) color.RGBA {
		v := frame.GetVecbAt(y, x) // B, G, R
		return color.RGBA{v[2], v[1], v[0], 255}
	}
	for _, p := range [][2]int{{100, 200}, {300, 200}, {200, 250}} {
		if got := at(p[0], p[1]); got != want {
			t.Errorf("box edge at %v is %v, want the class colour %v", p, got, want)
		}
	}
	if got := at(200, 200); got != (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("inside the box is %v: drawn over", got)
	}
	if got := at(150, 95); got == (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("no label tab above the box")
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestWriterCodecs: both annotated video codecs of Debian's OpenCV write an
// MP4 that decodes with the frames written.
func TestWriterCodecs(t *testing.T) {
	for codec, want := range map[string]string{"mp4v": "mpeg4", "avc1": "h264"} {
		out := filepath.Join(t.TempDir(), codec+".mp4")
		w, err := NewWriter(out, codec, 25, 320, 240, []string{"x"})
		if err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 90, 90, 0), 240, 320, gocv.MatTypeCV8UC3)
		for range 10 {
			if err := w.Write(&frame, []yolo.Detection{{Box: yolo.Box{X1: 10, Y1: 10, X2: 100, Y2: 100}, Score: 0.5}}); err != nil {
				t.Fatal(err)
			}
		}
		frame.Close()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st := videotest.Probe(t, out); st.Codec != want || st.Frames != 10 || st.Width != 320 {
			t.Errorf("%s: %+v, want 10 frames of %s", codec, st, want)
		}
	}
	if _, err := NewWriter(filepath.Join(t.TempDir(), "x.mp4"), "zzzz", 25, 320, 240, nil); err == nil {
		t.Error("a writer for an unknown codec opened")
	}
}
