// Package datatools holds the daemon binary's local data tools, in pure Go:
// converting annotations between COCO JSON, Pascal VOC XML and YOLO label
// files, and rendering a dataset as a contact-sheet PNG and an HTML gallery
// (`azaion annotations convert`, `azaion dataset show`). It is imported only
// by the daemon's CLI.
package datatools

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	_ "image/jpeg" // image sizes for YOLO -> COCO
	_ "image/png"

	_ "golang.org/x/image/bmp"  // and BMP
	_ "golang.org/x/image/webp" // and WebP
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	"github.com/azaion/edge/sdk/yololabel"
)

// COCO is the subset of a COCO detection file the converter reads and writes.
type COCO struct {
	Images      []COCOImage      `json:"images"`
	Annotations []COCOAnnotation `json:"annotations"`
	Categories  []COCOCategory   `json:"categories"`
}

// COCOImage is one image entry.
type COCOImage struct {
	ID       int64  `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
}

// COCOAnnotation is one box: bbox is [x, y, width, height] in pixels.
type COCOAnnotation struct {
	ID         int64      `json:"id"`
	ImageID    int64      `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Area       float64    `json:"area"`
	IsCrowd    int        `json:"iscrowd"`
}

// COCOCategory is one class.
type COCOCategory struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// ClassMapper maps a source class name (and id, when the format has one) to
// a class slot.
type ClassMapper func(name string, id int) (int, error)

// ByName maps names of the Azaion class system (classes.Name, e.g.
// "Truck(Wint)"), then names listed in extra (name -> slot).
func ByName(extra map[string]int) ClassMapper {
	return func(name string, _ int) (int, error) {
		if v, ok := extra[name]; ok {
			return v, nil
		}
		if v, ok := classes.Lookup(name); ok {
			return v, nil
		}
		return 0, fmt.Errorf("class %q is not an Azaion class name (map it with --map %s=ID)", name, name)
	}
}

// ByID keeps the source category id as the class slot.
func ByID(_ string, id int) (int, error) {
	if id < 0 || id >= classes.Slots {
		return 0, fmt.Errorf("category id %d is outside 0..%d", id, classes.Slots-1)
	}
	return id, nil
}

// ConvertStats counts what a conversion wrote.
type ConvertStats struct {
	Images, Boxes int
}

// COCOToYOLO writes one YOLO label file per image of the COCO file at src
// into dir (named after the image file), mapping categories with m.
func COCOToYOLO(src, dir string, m ClassMapper) (ConvertStats, error) {
	var st ConvertStats
	raw, err := os.ReadFile(src)
	if err != nil {
		return st, err
	}
	var c COCO
	if err := json.Unmarshal(raw, &c); err != nil {
		return st, fmt.Errorf("parse COCO %s: %w", src, err)
	}
	cats := map[int]int{}
	for _, cat := range c.Categories {
		slot, err := m(cat.Name, cat.ID)
		if err != nil {
			return st, fmt.Errorf("category %d: %w", cat.ID, err)
		}
		cats[cat.ID] = slot
	}
	imgs := map[int64]COCOImage{}
	for _, im := range c.Images {
		if im.Width <= 0 || im.Height <= 0 {
			return st, fmt.Errorf("image %d %q: size %dx%d is not positive", im.ID, im.FileName, im.Width, im.Height)
		}
		imgs[im.ID] = im
	}
	boxes := map[int64][]yololabel.Box{}
	for _, a := range c.Annotations {
		im, ok := imgs[a.ImageID]
		if !ok {
			return st, fmt.Errorf("annotation %d: unknown image_id %d", a.ID, a.ImageID)
		}
		slot, ok := cats[a.CategoryID]
		if !ok {
			return st, fmt.Errorf("annotation %d: unknown category_id %d", a.ID, a.CategoryID)
		}
		b := a.BBox
		boxes[a.ImageID] = append(boxes[a.ImageID], yololabel.FromRect(slot, b[0], b[1], b[0]+b[2], b[1]+b[3], im.Width, im.Height))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	for _, im := range c.Images {
		if err := writeFileAtomic(filepath.Join(dir, dataroot.LabelFile(filepath.Base(im.FileName))), yololabel.Format(boxes[im.ID])); err != nil {
			return st, err
		}
		st.Images++
		st.Boxes += len(boxes[im.ID])
	}
	return st, nil
}

// voc is the subset of a Pascal VOC annotation file the converter reads.
type voc struct {
	Filename string `xml:"filename"`
	Size     struct {
		Width  int `xml:"width"`
		Height int `xml:"height"`
	} `xml:"size"`
	Objects []struct {
		Name string `xml:"name"`
		Box  struct {
			XMin float64 `xml:"xmin"`
			YMin float64 `xml:"ymin"`
			XMax float64 `xml:"xmax"`
			YMax float64 `xml:"ymax"`
		} `xml:"bndbox"`
	} `xml:"object"`
}

// VOCToYOLO converts Pascal VOC XML files (src is one file or a folder of
// .xml files) into YOLO label files in dir. VOC pixel coordinates are
// 1-based and inclusive, so a box covers [xmin-1, xmax] in continuous pixels.
func VOCToYOLO(src, dir string, m ClassMapper) (ConvertStats, error) {
	var st ConvertStats
	files := []string{src}
	if fi, err := os.Stat(src); err != nil {
		return st, err
	} else if fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(src, "*.xml"))
		if len(files) == 0 {
			return st, fmt.Errorf("no .xml files in %s", src)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return st, err
		}
		var v voc
		if err := xml.Unmarshal(raw, &v); err != nil {
			return st, fmt.Errorf("parse VOC %s: %w", f, err)
		}
		if v.Size.Width <= 0 || v.Size.Height <= 0 {
			return st, fmt.Errorf("%s: size %dx%d is not positive", f, v.Size.Width, v.Size.Height)
		}
		var boxes []yololabel.Box
		for _, o := range v.Objects {
			slot, err := m(strings.TrimSpace(o.Name), -1)
			if err != nil {
				return st, fmt.Errorf("%s: %w", f, err)
			}
			b := o.Box
			boxes = append(boxes, yololabel.FromRect(slot, b.XMin-1, b.YMin-1, b.XMax, b.YMax, v.Size.Width, v.Size.Height))
		}
		name := v.Filename
		if name == "" {
			name = filepath.Base(f)
		}
		if err := writeFileAtomic(filepath.Join(dir, dataroot.LabelFile(filepath.Base(name))), yololabel.Format(boxes)); err != nil {
			return st, err
		}
		st.Images++
		st.Boxes += len(boxes)
	}
	return st, nil
}

// YOLOToCOCO reads a YOLO folder (images/ and labels/) and writes a COCO
// file to dst: categories are the class slots used, named by classes.Name.
// Image sizes are read from the JPEG or PNG headers.
func YOLOToCOCO(src, dst string) (ConvertStats, error) {
	var st ConvertStats
	names, err := dataroot.ListImages(filepath.Join(src, dataroot.Images))
	if err != nil {
		return st, err
	}
	if len(names) == 0 {
		return st, fmt.Errorf("no images in %s", filepath.Join(src, dataroot.Images))
	}
	out := COCO{Images: []COCOImage{}, Annotations: []COCOAnnotation{}, Categories: []COCOCategory{}}
	used := map[int]bool{}
	for i, n := range names {
		w, h, err := imageSize(filepath.Join(src, dataroot.Images, n))
		if err != nil {
			return st, err
		}
		id := int64(i + 1)
		out.Images = append(out.Images, COCOImage{ID: id, FileName: n, Width: w, Height: h})
		boxes, err := yololabel.ReadFile(filepath.Join(src, dataroot.Labels, dataroot.LabelFile(n)))
		if err != nil {
			return st, fmt.Errorf("labels of %s: %w", n, err)
		}
		for _, b := range boxes {
			x1, y1, x2, y2 := b.Rect(w, h)
			out.Annotations = append(out.Annotations, COCOAnnotation{ID: int64(len(out.Annotations) + 1), ImageID: id,
				CategoryID: b.Class, BBox: [4]float64{x1, y1, x2 - x1, y2 - y1}, Area: (x2 - x1) * (y2 - y1)})
			used[b.Class] = true
		}
		st.Images++
		st.Boxes += len(boxes)
	}
	for c := range used {
		out.Categories = append(out.Categories, COCOCategory{ID: c, Name: classes.Name(c)})
	}
	sort.Slice(out.Categories, func(a, b int) bool { return out.Categories[a].ID < out.Categories[b].ID })
	js, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return st, err
	}
	return st, writeFileAtomic(dst, js)
}

// imageSize reads the pixel size from an image header (JPEG, PNG, BMP or WebP).
func imageSize(path string) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("image %s: %w", path, err)
	}
	return cfg.Width, cfg.Height, nil
}

// writeFileAtomic writes a data file (mode 0644) atomically.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }
