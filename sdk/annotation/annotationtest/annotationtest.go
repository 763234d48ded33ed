// Package annotationtest generates valid annotations with real JPEG images for
// the tests and benchmarks of the annotation stream. It is imported only by
// tests, benchmarks and the publish tool's tests.
package annotationtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"time"

	"github.com/azaion/edge/sdk/annotation"
)

// JPEG returns a deterministic JPEG of size w x h whose content depends on seed
// (noise, so its size grows with the pixel count: ~50 KB at 150x150).
func JPEG(seed uint64, w, h int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(rng.UintN(256)), uint8(rng.UintN(256)), uint8(rng.UintN(256)), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Name returns the name of generated annotation i.
func Name(i int) string { return fmt.Sprintf("gen_%06d", i) }

// Boxes returns 1..3 deterministic in-range boxes for annotation i.
func Boxes(i int) []annotation.Box {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	n := 1 + rng.IntN(3)
	out := make([]annotation.Box, n)
	for k := range out {
		out[k] = annotation.Box{Class: rng.IntN(80), CX: 0.2 + 0.6*rng.Float64(), CY: 0.2 + 0.6*rng.Float64(),
			W: 0.05 + 0.1*rng.Float64(), H: 0.05 + 0.1*rng.Float64()}
	}
	return out
}

// Created returns the created event of annotation i with image img.
func Created(i int, img []byte) *annotation.Annotation {
	return &annotation.Annotation{
		Name: Name(i), Op: annotation.Created, Created: time.UnixMilli(1_795_867_200_000 + int64(i)).UTC(),
		Author: "gen", ImageFormat: "jpg", Image: img, Labels: Boxes(i),
	}
}

// MustEncode encodes a, panicking on error (test data only).
func MustEncode(a *annotation.Annotation) []byte {
	b, err := annotation.Encode(a)
	if err != nil {
		panic(err)
	}
	return b
}

// PNG returns a small deterministic PNG of size w x h.
func PNG(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
