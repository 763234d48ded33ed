package trainer

import (
	"hash/fnv"
	"image"
	"math"
	"math/rand/v2"

	sdk "github.com/azaion/edge/sdk/trainer"
)

// plan is the random choice of transforms for one variant of one image.
type plan struct {
	// geo is the composed geometric transform (flip, rotation,
	// scale/translate, perspective) in continuous image coordinates.
	geo      mat3
	hasGeo   bool
	flipOnly bool
	// Colour: pixel*alpha + beta.
	bc          bool
	alpha, beta float64
	// HSV: hue shift in OpenCV units (degrees/2), saturation factor.
	hsv      bool
	hueShift float64
	satScale float64
	// blurK is the Gaussian kernel (0 = none).
	blurK int
	// noiseStd > 0 adds Gaussian noise: a window at noiseOff of the
	// worker's seeded noise field, scaled to noiseStd.
	noiseStd float64
	noiseOff image.Point
	// ops lists the names of the applied transforms (for tests and logs).
	ops []string
}

// variantRand returns the random source of variant k of image key: the same
// seed, key and k always give the same stream.
func variantRand(seed int64, key string, k int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()^uint64(k)*0x9e3779b97f4a7c15))
}

func uniform(r *rand.Rand, a float64) float64 { return (r.Float64()*2 - 1) * a }

const numOps = 8

// makePlan draws the transforms of variant k (1-based) of image key of size
// w x h. Every transform is drawn with its probability; a variant that drew
// none gets one picked at random, so no variant equals the original.
func makePlan(p sdk.AugmentParams, key string, k, w, h int) plan {
	r := variantRand(p.Seed, key, k)
	probs := [numOps]float64{p.FlipP, p.RotateP, p.ScaleP, p.PerspectiveP, p.BrightnessP, p.HSVP, p.BlurP, p.NoiseP}
	var on [numOps]bool
	any := false
	for i, pr := range probs {
		on[i] = r.Float64() < pr
		any = any || on[i]
	}
	if !any {
		on[r.IntN(numOps)] = true
	}
	var pl plan
	fw, fh := float64(w), float64(h)
	cx, cy := fw/2, fh/2
	m := identity()
	if on[0] {
		m = mat3{-1, 0, fw, 0, 1, 0, 0, 0, 1}
		pl.ops = append(pl.ops, "flip")
	}
	if on[1] {
		th := uniform(r, p.RotateDeg) * math.Pi / 180
		c, s := math.Cos(th), math.Sin(th)
		m = translate(cx, cy).mul(mat3{c, -s, 0, s, c, 0, 0, 0, 1}).mul(translate(-cx, -cy)).mul(m)
		pl.ops = append(pl.ops, "rotate")
	}
	if on[2] {
		sc := 1 + uniform(r, p.Scale)
		tx, ty := uniform(r, p.Translate)*fw, uniform(r, p.Translate)*fh
		m = translate(cx+tx, cy+ty).mul(mat3{sc, 0, 0, 0, sc, 0, 0, 0, 1}).mul(translate(-cx, -cy)).mul(m)
		pl.ops = append(pl.ops, "scale")
	}
	if on[3] {
		src := [4][2]float64{{0, 0}, {fw, 0}, {fw, fh}, {0, fh}}
		dst := src
		for i := range dst {
			dst[i][0] += uniform(r, p.Perspective) * fw
			dst[i][1] += uniform(r, p.Perspective) * fh
		}
		m = perspectiveFrom(src, dst).mul(m)
		pl.ops = append(pl.ops, "perspective")
	}
	pl.geo = m
	pl.hasGeo = on[0] || on[1] || on[2] || on[3]
	pl.flipOnly = on[0] && !on[1] && !on[2] && !on[3]
	if on[4] {
		pl.bc, pl.alpha, pl.beta = true, 1+uniform(r, p.Contrast), uniform(r, p.Brightness)*255
		pl.ops = append(pl.ops, "brightness")
	}
	if on[5] {
		pl.hsv, pl.hueShift, pl.satScale = true, uniform(r, p.Hue)/2, 1+uniform(r, p.Saturation)
		pl.ops = append(pl.ops, "hsv")
	}
	if on[6] {
		pl.blurK = 3 + 2*r.IntN((p.BlurMax-3)/2+1)
		pl.ops = append(pl.ops, "blur")
	}
	if on[7] {
		pl.noiseStd = p.NoiseStd * (0.5 + r.Float64()/2)
		pl.noiseOff = image.Pt(r.IntN(noisePad), r.IntN(noisePad))
		pl.ops = append(pl.ops, "noise")
	}
	return pl
}

// hsvLUT is the 3-channel (interleaved H, S, V) table that shifts hue (0..179,
// wrapping) and scales saturation.
func hsvLUT(hueShift, satScale float64) []byte {
	t := make([]byte, 256*3)
	for i := 0; i < 256; i++ {
		h := math.Mod(math.Round(float64(i)+hueShift), 180)
		if h < 0 {
			h += 180
		}
		if i >= 180 {
			h = float64(i)
		}
		t[3*i] = sat8(h)
		t[3*i+1] = sat8(float64(i) * satScale)
		t[3*i+2] = byte(i)
	}
	return t
}

func sat8(v float64) byte {
	v = math.Round(v)
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return byte(v)
}
