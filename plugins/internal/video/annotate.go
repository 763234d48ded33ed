package video

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/yolo"
)

// palette are the box colours by class id (modulo its length), Ultralytics'
// palette in RGB.
var palette = []color.RGBA{
	{0xFF, 0x38, 0x38, 0xFF}, {0xFF, 0x9D, 0x97, 0xFF}, {0xFF, 0x70, 0x1F, 0xFF}, {0xFF, 0xB2, 0x1D, 0xFF},
	{0xCF, 0xD2, 0x31, 0xFF}, {0x48, 0xF9, 0x0A, 0xFF}, {0x92, 0xCC, 0x17, 0xFF}, {0x3D, 0xDB, 0x86, 0xFF},
	{0x1A, 0x93, 0x34, 0xFF}, {0x00, 0xD4, 0xBB, 0xFF}, {0x2C, 0x99, 0xA8, 0xFF}, {0x00, 0xC2, 0xFF, 0xFF},
	{0x34, 0x45, 0x93, 0xFF}, {0x64, 0x73, 0xFF, 0xFF}, {0x00, 0x18, 0xEC, 0xFF}, {0x84, 0x38, 0xFF, 0xFF},
	{0x52, 0x00, 0x85, 0xFF}, {0xCB, 0x38, 0xFF, 0xFF}, {0xFF, 0x95, 0xC8, 0xFF}, {0xFF, 0x37, 0xC7, 0xFF},
}

// Color is the colour (RGB) boxes of a class are drawn in.
func Color(classID int) color.RGBA {
	if classID < 0 {
		classID = -classID
	}
	return palette[classID%len(palette)]
}

// LineWidth is the box line width for a frame size, as Ultralytics picks it.
func LineWidth(w, h int) int {
	return max(2, int(math.Round(float64(w+h)/2*0.003)))
}

// Writer writes an annotated MP4 with OpenCV's VideoWriter (FFmpeg backend).
type Writer struct {
	vw     *gocv.VideoWriter
	w, h   int
	lw     int
	labels []string
	n      int64
}

// NewWriter opens path for a w x h video at fps with codec (backend.CodecMPEG4
// or backend.CodecH264); labels name the classes.
func NewWriter(path, codec string, fps float64, w, h int, labels []string) (*Writer, error) {
	if codec == "" {
		codec = backend.CodecMPEG4
	}
	if fps <= 0 || fps > 1000 {
		fps = 30
	}
	vw, err := gocv.VideoWriterFile(path, codec, fps, w, h, true)
	if err != nil {
		return nil, fmt.Errorf("annotated video: %v: %w", err, backend.ErrUnsupported)
	}
	if !vw.IsOpened() {
		vw.Close()
		return nil, fmt.Errorf("annotated video: OpenCV cannot write %s (%dx%d) with codec %s: %w", path, w, h, codec, backend.ErrUnsupported)
	}
	return &Writer{vw: vw, w: w, h: h, lw: LineWidth(w, h), labels: labels}, nil
}

// Write draws dets on frame (in place) and appends it to the video.
func (wr *Writer) Write(frame *gocv.Mat, dets []yolo.Detection) error {
	if frame.Cols() != wr.w || frame.Rows() != wr.h {
		return fmt.Errorf("annotated video: frame is %dx%d, the video %dx%d", frame.Cols(), frame.Rows(), wr.w, wr.h)
	}
	Draw(frame, dets, wr.labels, wr.lw)
	if err := wr.vw.Write(*frame); err != nil {
		return fmt.Errorf("annotated video: %w", err)
	}
	wr.n++
	return nil
}

// Frames is the number of frames written.
func (wr *Writer) Frames() int64 { return wr.n }

// Close finishes the file.
func (wr *Writer) Close() error {
	if wr.vw == nil {
		return nil
	}
	err := wr.vw.Close()
	wr.vw = nil
	return err
}

// Draw draws the boxes of dets with their label and score on a BGR frame:
// a box of line width lw in its class colour, the label in white on a
// filled tab of that colour above the box (inside it at the top edge).
func Draw(frame *gocv.Mat, dets []yolo.Detection, labels []string, lw int) {
	W, H := frame.Cols(), frame.Rows()
	scale := max(float64(lw)/3, 0.4)
	thick := max(lw-1, 1)
	for _, d := range dets {
		c := Color(d.ClassID) // gocv orders the channels for a BGR frame
		r := image.Rect(clampInt(int(math.Round(float64(d.Box.X1))), 0, W-1), clampInt(int(math.Round(float64(d.Box.Y1))), 0, H-1),
			clampInt(int(math.Round(float64(d.Box.X2))), 0, W-1), clampInt(int(math.Round(float64(d.Box.Y2))), 0, H-1))
		if r.Empty() {
			continue
		}
		gocv.Rectangle(frame, r, c, lw)
		label := strconv.Itoa(d.ClassID)
		if d.ClassID >= 0 && d.ClassID < len(labels) {
			label = labels[d.ClassID]
		}
		label += " " + strconv.FormatFloat(float64(d.Score), 'f', 2, 32)
		sz := gocv.GetTextSize(label, gocv.FontHersheySimplex, scale, thick)
		top := r.Min.Y - sz.Y - 3
		if top < 0 {
			top = r.Min.Y
		}
		tab := image.Rect(r.Min.X, top, min(r.Min.X+sz.X+2, W-1), top+sz.Y+3)
		gocv.Rectangle(frame, tab, c, -1)
		gocv.PutText(frame, label, image.Pt(r.Min.X+1, top+sz.Y+1), gocv.FontHersheySimplex, scale, color.RGBA{255, 255, 255, 255}, thick)
	}
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }
