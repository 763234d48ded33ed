package datatools

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azaion/edge/sdk/yololabel"
)

// writeYOLO writes a YOLO folder with PNG images of the given sizes and labels.
func writeYOLO(t *testing.T, dir string, sizes []image.Point, labels []string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "images"), 0o755)
	os.MkdirAll(filepath.Join(dir, "labels"), 0o755)
	for i, sz := range sizes {
		img := image.NewRGBA(image.Rect(0, 0, sz.X, sz.Y))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = 128, 128, 128, 255
		}
		f, _ := os.Create(filepath.Join(dir, "images", fmt.Sprintf("i%d.png", i)))
		png.Encode(f, img)
		f.Close()
		if labels[i] != "-" {
			os.WriteFile(filepath.Join(dir, "labels", fmt.Sprintf("i%d.txt", i)), []byte(labels[i]), 0o644)
		}
	}
}

func TestConvertRoundTripYOLOCOCOYOLO(t *testing.T) {
	dir := t.TempDir()
	labels := []string{
		"0 0.5 0.5 0.25 0.4\n21 0.123457 0.765432 0.1 0.05\n56 0.9 0.1 0.2 0.2\n",
		"", // background
		"3 0.333333 0.666667 0.111111 0.222222\n",
	}
	writeYOLO(t, dir, []image.Point{{640, 480}, {320, 240}, {1280, 720}}, labels)
	js := filepath.Join(t.TempDir(), "coco.json")
	st, err := YOLOToCOCO(dir, js)
	if err != nil || st.Images != 3 || st.Boxes != 4 {
		t.Fatal(st, err)
	}
	var c COCO
	raw, _ := os.ReadFile(js)
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Categories) != 4 || c.Categories[2].Name != "Truck(Wint)" || c.Categories[3].ID != 56 {
		t.Fatalf("categories %+v: %v", c.Categories, err)
	}
	for _, m := range []struct {
		name string
		m    ClassMapper
	}{{"by name", ByName(nil)}, {"by id", ByID}} {
		t.Run(m.name, func(t *testing.T) {
			out := t.TempDir()
			if _, err := COCOToYOLO(js, out, m.m); err != nil {
				t.Fatal(err)
			}
			for i, l := range labels {
				want, _ := yololabel.Parse(strings.NewReader(l))
				got, err := yololabel.ReadFile(filepath.Join(out, fmt.Sprintf("i%d.txt", i)))
				if err != nil || len(got) != len(want) {
					t.Fatalf("i%d: %v %v", i, got, err)
				}
				for k := range want {
					g, w := got[k], want[k]
					if g.Class != w.Class || math.Abs(g.CX-w.CX) > 1e-6 || math.Abs(g.CY-w.CY) > 1e-6 || math.Abs(g.W-w.W) > 1e-6 || math.Abs(g.H-w.H) > 1e-6 {
						t.Fatalf("i%d box %d: %+v != %+v", i, k, g, w)
					}
				}
			}
		})
	}
}

func TestCOCOToYOLOErrors(t *testing.T) {
	tests := []struct{ name, body, err string }{
		{"not json", "{", "parse COCO"},
		{"unknown class", `{"images":[{"id":1,"file_name":"a.jpg","width":10,"height":10}],"categories":[{"id":1,"name":"Cat"}],"annotations":[]}`, `class "Cat"`},
		{"bad image id", `{"images":[],"categories":[{"id":1,"name":"Truck"}],"annotations":[{"id":1,"image_id":9,"category_id":1,"bbox":[0,0,1,1]}]}`, "unknown image_id 9"},
		{"zero size", `{"images":[{"id":1,"file_name":"a.jpg","width":0,"height":10}],"categories":[],"annotations":[]}`, "not positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(p, []byte(tc.body), 0o644)
			if _, err := COCOToYOLO(p, t.TempDir(), ByName(nil)); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"images":[{"id":1,"file_name":"x/a.jpg","width":100,"height":50}],"categories":[{"id":7,"name":"Cat"}],"annotations":[{"id":1,"image_id":1,"category_id":7,"bbox":[10,5,20,10]}]}`), 0o644)
	out := t.TempDir()
	if _, err := COCOToYOLO(p, out, ByName(map[string]int{"Cat": 11})); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "a.txt"))
	if string(b) != "11 0.200000 0.200000 0.200000 0.200000\n" {
		t.Fatalf("mapped label %q", b)
	}
}

func TestVOCToYOLO(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.xml"), []byte(`<annotation><filename>a.jpg</filename><size><width>200</width><height>100</height><depth>3</depth></size>
<object><name>Truck</name><bndbox><xmin>21</xmin><ymin>11</ymin><xmax>60</xmax><ymax>50</ymax></bndbox></object>
<object><name>Plane(Night)</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>200</xmax><ymax>100</ymax></bndbox></object></annotation>`), 0o644)
	out := t.TempDir()
	st, err := VOCToYOLO(src, out, ByName(nil))
	if err != nil || st.Boxes != 2 {
		t.Fatal(st, err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "a.txt"))
	want := "1 0.200000 0.300000 0.200000 0.400000\n50 0.500000 0.500000 1.000000 1.000000\n"
	if string(b) != want {
		t.Fatalf("got %q want %q", b, want)
	}
	os.WriteFile(filepath.Join(src, "b.xml"), []byte(`<annotation><size><width>10</width><height>10</height></size><object><name>Dog</name></object></annotation>`), 0o644)
	if _, err := VOCToYOLO(filepath.Join(src, "b.xml"), out, ByName(nil)); err == nil || !strings.Contains(err.Error(), `"Dog"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestShowRendersSheet checks the contact sheet's size and that the box
// outlines are drawn in the class colour where the layout puts them.
func TestShowRendersSheet(t *testing.T) {
	dir := t.TempDir()
	// 200x100 images; box (40,20)-(120,80) of class 1 in i0.
	writeYOLO(t, dir, []image.Point{{200, 100}, {200, 100}, {100, 100}}, []string{"1 0.4 0.5 0.4 0.6\n", "-", "15 0.5 0.5 0.5 0.5\n"})
	// A JPEG too.
	f, _ := os.Create(filepath.Join(dir, "images", "j.jpg"))
	jpeg.Encode(f, image.NewGray(image.Rect(0, 0, 64, 48)), nil)
	f.Close()
	out := filepath.Join(t.TempDir(), "show")
	res, err := Show(dir, ShowOptions{Out: out, Cols: 2, Thumb: 100})
	if err != nil {
		t.Fatal(err)
	}
	// 2 columns x 2 rows of 100 x (75+16) cells with 4 px padding.
	want := image.Pt(2*(100+sheetPad)+sheetPad, 2*(75+caption+sheetPad)+sheetPad)
	if res.Images != 4 || res.Size != want {
		t.Fatalf("%d images, size %v, want 4 and %v", res.Images, res.Size, want)
	}
	pf, err := os.Open(res.PNG)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(pf)
	pf.Close()
	if err != nil || img.Bounds().Size() != want {
		t.Fatalf("png %v: %v", img.Bounds(), err)
	}
	// i0 sits in cell (0,0): scale 0.5, drawn 100x50 at y offset (75-50)/2 = 12.
	ox, oy := sheetPad, sheetPad+12
	c := ClassColor(1)
	at := func(x, y int) color.RGBA { return color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) }
	for _, p := range []image.Point{{ox + 20, oy + 25}, {ox + 21, oy + 30}, {ox + 59, oy + 25}, {ox + 40, oy + 39}} {
		if got := at(p.X, p.Y); got != c {
			t.Errorf("box outline pixel %v = %v, want %v", p, got, c)
		}
	}
	if got := at(ox+40, oy+30); got == c {
		t.Errorf("inside of the box is filled with the box colour")
	}
	// The class-15 box of i2 is drawn somewhere on the sheet.
	found := false
	c15 := ClassColor(15)
	for y := 0; y < want.Y && !found; y++ {
		for x := 0; x < want.X; x++ {
			if at(x, y) == c15 {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("class 15 box not drawn")
	}
	html, err := os.ReadFile(res.HTML)
	if err != nil || !strings.Contains(string(html), "Truck") || !strings.Contains(string(html), "Building") || !strings.Contains(string(html), "../") {
		t.Fatalf("gallery: %v\n%s", err, html)
	}
	if _, err := Show(t.TempDir(), ShowOptions{}); err == nil {
		t.Fatal("an empty folder rendered")
	}
}
