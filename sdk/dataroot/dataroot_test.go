package dataroot

import "testing"

func TestIsImage(t *testing.T) {
	for name, want := range map[string]bool{
		"a.jpg": true, "a.JPEG": true, "b.png": true, "c.bmp": true, "d.webp": true,
		"a.txt": false, ".tmp123.jpg": false, "noext": false, "a.jpg.part": false, "x.gif": false,
	} {
		if got := IsImage(name); got != want {
			t.Errorf("IsImage(%q) = %v, want %v", name, got, want)
		}
	}
	if LabelFile("img.a.jpg") != "img.a.txt" || Stem("x.png") != "x" {
		t.Errorf("LabelFile/Stem: %q %q", LabelFile("img.a.jpg"), Stem("x.png"))
	}
}
