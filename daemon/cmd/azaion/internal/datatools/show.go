package datatools

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	"github.com/azaion/edge/sdk/yololabel"
)

// ShowOptions shape the contact sheet.
type ShowOptions struct {
	// Out is the folder the PNG and the HTML are written to (created).
	Out string
	// Max is the most images shown (default 64).
	Max int
	// Cols is the number of thumbnails per row (default 6).
	Cols int
	// Thumb is the thumbnail width in pixels (default 320); its height is 3/4 of it.
	Thumb int
}

// ShowResult says what Show wrote.
type ShowResult struct {
	// PNG and HTML are the written files.
	PNG, HTML string
	// Images is the number of images shown.
	Images int
	// Size is the contact sheet's size in pixels.
	Size image.Point
}

// Layout constants of the contact sheet.
const (
	sheetPad = 4  // pixels between cells
	caption  = 16 // caption strip under each thumbnail
)

var background = color.RGBA{24, 24, 24, 255}

// ClassColor is the colour boxes of a class slot are drawn in (one per base
// class, the same for its weather modes).
func ClassColor(id int) color.RGBA {
	base, _, ok := classes.Split(id)
	if !ok {
		return color.RGBA{255, 255, 255, 255}
	}
	// Hues spread around the circle, full saturation and value.
	h := float64(base) / float64(classes.NumBase) * 6
	x := uint8(255 * (1 - math.Abs(math.Mod(h, 2)-1)))
	switch int(h) {
	case 0:
		return color.RGBA{255, x, 0, 255}
	case 1:
		return color.RGBA{x, 255, 0, 255}
	case 2:
		return color.RGBA{0, 255, x, 255}
	case 3:
		return color.RGBA{0, x, 255, 255}
	case 4:
		return color.RGBA{x, 0, 255, 255}
	}
	return color.RGBA{255, 0, x, 255}
}

type shown struct {
	Path, Name string
	W, H       int
	Boxes      []yololabel.Box
}

// findImages returns the images of dir (dir/images, else the images of the
// dataset splits dir/{train,valid,test}/images) with their label folders.
func findImages(dir string, max int) ([]shown, error) {
	var out []shown
	folders := []string{dir}
	if _, err := os.Stat(filepath.Join(dir, dataroot.Images)); err != nil {
		folders = nil
		for _, s := range []string{"train", "valid", "test"} {
			if _, err := os.Stat(filepath.Join(dir, s, dataroot.Images)); err == nil {
				folders = append(folders, filepath.Join(dir, s))
			}
		}
	}
	if len(folders) == 0 {
		return nil, fmt.Errorf("%s has no images/ folder (nor train/, valid/, test/ with one)", dir)
	}
	for _, f := range folders {
		names, err := dataroot.ListImages(filepath.Join(f, dataroot.Images))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if len(out) >= max {
				return out, nil
			}
			boxes, err := yololabel.ReadFile(filepath.Join(f, dataroot.Labels, dataroot.LabelFile(n)))
			if err != nil {
				return nil, fmt.Errorf("labels of %s: %w", n, err)
			}
			out = append(out, shown{Path: filepath.Join(f, dataroot.Images, n), Name: n, Boxes: boxes})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no JPEG or PNG images found in " + dir)
	}
	return out, nil
}

// Show renders up to Max images of dir with their boxes and class names into
// Out/contact-sheet.png and Out/index.html (which shows the full images with
// the boxes drawn over them).
func Show(dir string, o ShowOptions) (ShowResult, error) {
	if o.Max <= 0 {
		o.Max = 64
	}
	if o.Cols <= 0 {
		o.Cols = 6
	}
	if o.Thumb <= 0 {
		o.Thumb = 320
	}
	if o.Thumb < 32 || o.Thumb > 2048 || o.Cols > 64 {
		return ShowResult{}, fmt.Errorf("thumb %d (32..2048) or cols %d (1..64) out of range", o.Thumb, o.Cols)
	}
	if o.Out == "" {
		o.Out = dir
	}
	items, err := findImages(dir, o.Max)
	if err != nil {
		return ShowResult{}, err
	}
	cellW, thumbH := o.Thumb, o.Thumb*3/4
	cellH := thumbH + caption
	cols := min(o.Cols, len(items))
	rows := (len(items) + cols - 1) / cols
	sheet := image.NewRGBA(image.Rect(0, 0, cols*(cellW+sheetPad)+sheetPad, rows*(cellH+sheetPad)+sheetPad))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(background), image.Point{}, draw.Src)
	for i := range items {
		it := &items[i]
		img, err := decodeFile(it.Path)
		if err != nil {
			return ShowResult{}, err
		}
		it.W, it.H = img.Bounds().Dx(), img.Bounds().Dy()
		ox, oy := sheetPad+(i%cols)*(cellW+sheetPad), sheetPad+(i/cols)*(cellH+sheetPad)
		s := math.Min(float64(cellW)/float64(it.W), float64(thumbH)/float64(it.H))
		dw, dh := int(math.Round(float64(it.W)*s)), int(math.Round(float64(it.H)*s))
		dx, dy := ox+(cellW-dw)/2, oy+(thumbH-dh)/2
		draw.ApproxBiLinear.Scale(sheet, image.Rect(dx, dy, dx+dw, dy+dh), img, img.Bounds(), draw.Src, nil)
		for _, b := range it.Boxes {
			x1, y1, x2, y2 := b.Rect(it.W, it.H)
			r := image.Rect(dx+int(math.Round(x1*s)), dy+int(math.Round(y1*s)), dx+int(math.Round(x2*s)), dy+int(math.Round(y2*s)))
			c := ClassColor(b.Class)
			outline(sheet, r.Intersect(image.Rect(dx, dy, dx+dw, dy+dh)), c)
			label(sheet, r.Min.X+2, max(r.Min.Y-2, dy+11), classes.Name(b.Class), c)
		}
		label(sheet, ox+2, oy+thumbH+12, fmt.Sprintf("%s (%d)", trim(it.Name, cellW/7-5), len(it.Boxes)), color.RGBA{220, 220, 220, 255})
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return ShowResult{}, err
	}
	res := ShowResult{PNG: filepath.Join(o.Out, "contact-sheet.png"), HTML: filepath.Join(o.Out, "index.html"), Images: len(items), Size: sheet.Bounds().Size()}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return res, err
	}
	if err := writeFileAtomic(res.PNG, buf.Bytes()); err != nil {
		return res, err
	}
	page, err := gallery(items, o.Out)
	if err != nil {
		return res, err
	}
	return res, writeFileAtomic(res.HTML, page)
}

func decodeFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}

// outline draws a 2-pixel rectangle border inside r.
func outline(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	if r.Empty() {
		return
	}
	u := image.NewUniform(c)
	for _, e := range []image.Rectangle{
		image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+2), image.Rect(r.Min.X, r.Max.Y-2, r.Max.X, r.Max.Y),
		image.Rect(r.Min.X, r.Min.Y, r.Min.X+2, r.Max.Y), image.Rect(r.Max.X-2, r.Min.Y, r.Max.X, r.Max.Y),
	} {
		draw.Draw(dst, e.Intersect(r), u, image.Point{}, draw.Src)
	}
}

// label writes text with its baseline at (x, y) on a dark backing strip.
func label(dst *image.RGBA, x, y int, text string, c color.RGBA) {
	face := basicfont.Face7x13
	w := font.MeasureString(face, text).Ceil()
	draw.Draw(dst, image.Rect(x-1, y-11, x+w+1, y+3).Intersect(dst.Bounds()), image.NewUniform(color.RGBA{0, 0, 0, 200}), image.Point{}, draw.Over)
	d := &font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(text)
}

func trim(s string, n int) string {
	if n < 4 || len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

var galleryTmpl = template.Must(template.New("g").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Azaion dataset: {{.Count}} images</title>
<style>body{background:#181818;color:#ddd;font:13px sans-serif}figure{display:inline-block;margin:6px;width:420px;vertical-align:top}
svg{width:100%;height:auto;background:#000}text{font:bold 14px sans-serif;paint-order:stroke;stroke:#000;stroke-width:3px}</style></head>
<body><h1>{{.Count}} images</h1>
{{range .Items}}<figure><svg viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg"><image href="{{.Src}}" width="{{.W}}" height="{{.H}}"/>
{{range .Boxes}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="none" stroke="{{.Color}}" stroke-width="{{.Stroke}}"/><text x="{{.X}}" y="{{.TY}}" fill="{{.Color}}">{{.Name}}</text>
{{end}}</svg><figcaption>{{.Name}}: {{len .Boxes}} boxes</figcaption></figure>
{{end}}</body></html>
`))

type galleryBox struct {
	X, Y, W, H, TY, Stroke float64
	Name                   string
	Color                  string
}

type galleryItem struct {
	Src   string
	Name  string
	W, H  int
	Boxes []galleryBox
}

// gallery renders the HTML page; image paths are relative to out.
func gallery(items []shown, out string) ([]byte, error) {
	var data struct {
		Count int
		Items []galleryItem
	}
	data.Count = len(items)
	for _, it := range items {
		src := it.Path
		if abs, err := filepath.Abs(it.Path); err == nil {
			if absOut, err := filepath.Abs(out); err == nil {
				if rel, err := filepath.Rel(absOut, abs); err == nil {
					src = rel
				}
			}
		}
		gi := galleryItem{Src: filepath.ToSlash(src), Name: it.Name, W: it.W, H: it.H}
		stroke := math.Max(2, float64(it.W)/400)
		for _, b := range it.Boxes {
			x1, y1, x2, y2 := b.Rect(it.W, it.H)
			c := ClassColor(b.Class)
			gi.Boxes = append(gi.Boxes, galleryBox{X: x1, Y: y1, W: x2 - x1, H: y2 - y1, TY: math.Max(y1-4, 14), Stroke: stroke,
				Name: classes.Name(b.Class), Color: fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)})
		}
		data.Items = append(data.Items, gi)
	}
	var b strings.Builder
	if err := galleryTmpl.Execute(&b, data); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
