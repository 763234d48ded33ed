package imaging

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/imageheader"
)

// OpenCV imwrite parameters gocv 0.31 has no names for.
const (
	imwriteJPEGRestartInterval = 4
	imwriteJPEGSamplingFactor  = 7
)

// splitCases are JPEGs of every kind the two-thread decoder takes: the
// camera's bus.jpg (restart markers every MCU row), its 4K upscale (none),
// 4:4:4, 4:2:2, 4:2:0 and greyscale at odd sizes, with and without restart
// intervals, low and high quality.
func splitCases(t *testing.T) map[string][]byte {
	t.Helper()
	bus := readBus(t)
	src, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil || src.Empty() {
		t.Fatalf("decode bus.jpg: %v", err)
	}
	defer src.Close()
	odd := gocv.NewMat()
	defer odd.Close()
	gocv.Resize(src, &odd, image.Pt(1283, 967), 0, 0, gocv.InterpolationLinear)
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(odd, &gray, gocv.ColorBGRToGray)
	cases := map[string][]byte{
		"bus.jpg":       bus,
		"4k":            bus4K(t),
		"444-q95":       encode(t, odd, gocv.IMWriteJpegQuality, 95, imwriteJPEGSamplingFactor, 0x111111),
		"422-q80":       encode(t, odd, gocv.IMWriteJpegQuality, 80, imwriteJPEGSamplingFactor, 0x211111),
		"420-q50":       encode(t, odd, gocv.IMWriteJpegQuality, 50, imwriteJPEGSamplingFactor, 0x221111),
		"420-q100-rst7": encode(t, odd, gocv.IMWriteJpegQuality, 100, imwriteJPEGRestartInterval, 7),
		"444-q90-rst1":  encode(t, odd, gocv.IMWriteJpegQuality, 90, imwriteJPEGSamplingFactor, 0x111111, imwriteJPEGRestartInterval, 1),
		"gray-q90":      encode(t, gray, gocv.IMWriteJpegQuality, 90),
		"gray-q70-rst3": encode(t, gray, gocv.IMWriteJpegQuality, 70, imwriteJPEGRestartInterval, 3),
	}
	return cases
}

func readBus(t *testing.T) []byte { return readTestImage(t, "bus.jpg") }

// TestSplitDecodeExact: the two-thread decoder gives TurboJPEG's pixels bit
// for bit, at every power-of-two scale, with the second thread doing a real
// share of the work on images big enough for it.
func TestSplitDecodeExact(t *testing.T) {
	moves := 0
	defer func() { t.Logf("second thread moved ahead %d times (the calling thread had caught up)", moves) }()
	for name, b := range splitCases(t) {
		hdr, err := imageheader.Read(b)
		if err != nil {
			t.Fatal(name, err)
		}
		for _, num := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%s/%d", name, num), func(t *testing.T) {
				want, err := decodeTJ(b, hdr.Width, hdr.Height, num)
				if err != nil {
					t.Fatal(err)
				}
				defer want.Close()
				// 0: one thread (Decode without Parallel). 0.02: the calling
				// thread soon catches up with the second one, which is then
				// moved ahead (relocate in splitjpeg.c).
				for _, at := range []float64{0, 0.02, 0.1, splitAt(num), 0.9} {
					// As served (the threads race), and with the second
					// thread done first, so that its share is certain.
					for _, wait := range []bool{false, true} {
						if at == 0 && wait {
							continue
						}
						got, ok, st := decodeSplit(b, hdr.Width, hdr.Height, num, at, 0, wait, nil)
						moves += int(st.Moves)
						if !ok {
							t.Fatalf("split %.2f wait %v: not taken", at, wait)
						}
						if !bytes.Equal(got.ToBytes(), want.ToBytes()) {
							t.Errorf("split %.2f wait %v: pixels differ from TurboJPEG's", at, wait)
						}
						got.Close()
						if at == 0 && (st.Worker || st.Copied != 0) {
							t.Errorf("one thread: a second one took %d of %d MCUs", st.Copied, st.MCUs)
						}
						if wait && (!st.Worker || st.Copied == 0 || st.Copied >= st.MCUs) {
							t.Errorf("split %.2f: second thread took %d of %d MCUs (worker %v), want a share", at, st.Copied, st.MCUs, st.Worker)
						}
					}
				}
				// Split by rows: the JPEGs with restart markers (all of
				// these have intervals that start rows), the others as above.
				restarts := name == "bus.jpg" || strings.Contains(name, "rst")
				for _, rs := range []float64{0.1, rowSplit, 0.9} {
					for _, wait := range []bool{false, true} {
						got, ok, st := decodeSplit(b, hdr.Width, hdr.Height, num, splitAt(num), rs, wait, nil)
						if !ok {
							t.Fatalf("rows at %.2f wait %v: not taken", rs, wait)
						}
						if !bytes.Equal(got.ToBytes(), want.ToBytes()) {
							t.Errorf("rows at %.2f wait %v: pixels differ from TurboJPEG's", rs, wait)
						}
						got.Close()
						if st.Rows != restarts {
							t.Errorf("rows at %.2f: split by rows %v, want %v", rs, st.Rows, restarts)
						}
						if st.Rows && (!st.Worker || st.Copied == 0 || st.Copied >= st.MCUs) {
							t.Errorf("rows at %.2f: second part has %d of %d MCUs, want a share", rs, st.Copied, st.MCUs)
						}
					}
				}
			})
		}
	}
}

// TestSplitDecodeNotTaken: the JPEGs it leaves to TurboJPEG are refused,
// not decoded wrongly, and Decode with Parallel still decodes them.
func TestSplitDecodeNotTaken(t *testing.T) {
	bus := readBus(t)
	src, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cases := map[string][]byte{
		"progressive": encode(t, src, gocv.IMWriteJpegProgressive, 1),
		"truncated":   append(bus[:len(bus)*2/3:len(bus)*2/3], 0xFF, 0xD9), // data ends early, then EOI
		"cmyk":        testdata(t, "cmyk.jpg"),
	}
	for name, b := range cases {
		hdr, err := imageheader.Read(b)
		if err != nil {
			t.Fatal(name, err)
		}
		if m, ok, _ := decodeSplit(b, hdr.Width, hdr.Height, 8, 0.4, rowSplit, true, nil); ok {
			m.Close()
			t.Errorf("%s: taken, want left to TurboJPEG", name)
		}
		// Decode with Parallel answers as without: same pixels or same error.
		a, errA := Decode(b, 640, 640, Options{})
		p, errP := Decode(b, 640, 640, Options{Parallel: true})
		switch {
		case (errA == nil) != (errP == nil) || errA != nil && errA.Error() != errP.Error():
			t.Errorf("%s: Decode %v, with Parallel %v", name, errA, errP)
		case errA == nil && !bytes.Equal(a.Mat.ToBytes(), p.Mat.ToBytes()):
			t.Errorf("%s: Decode with Parallel gives other pixels", name)
		}
		a.Close()
		p.Close()
	}
}

// TestSplitDecodeDamaged: a thousand random corruptions of two JPEGs (one
// with restart markers, one without) never crash it, and whatever it
// decodes is what TurboJPEG decodes.
func TestSplitDecodeDamaged(t *testing.T) {
	bus := readBus(t)
	src, err := gocv.IMDecode(bus, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(src, &small, image.Pt(400, 300), 0, 0, gocv.InterpolationLinear)
	bases := [][]byte{encode(t, small, gocv.IMWriteJpegQuality, 90), encode(t, small, imwriteJPEGRestartInterval, 2)}
	rng := rand.New(rand.NewPCG(1, 2))
	taken, same := 0, 0
	for i := range 1000 {
		base := bases[i%2]
		b := append([]byte(nil), base...)
		for range 1 + rng.IntN(4) {
			at := 600 + rng.IntN(len(b)-600) // the entropy-coded data
			b[at] = byte(rng.IntN(256))
		}
		if rng.IntN(4) == 0 {
			b = b[:600+rng.IntN(len(b)-600)]
		}
		hdr, err := imageheader.Read(b)
		if err != nil {
			continue
		}
		num := []int{1, 2, 4, 8}[rng.IntN(4)]
		at := 0.1 + 0.8*rng.Float64()
		if i%4 == 1 {
			at = 0 // one thread
		}
		rows := []float64{0, 0.3, rowSplit, 0.8}[rng.IntN(4)]
		got, ok, _ := decodeSplit(b, hdr.Width, hdr.Height, num, at, rows, i%3 == 0, nil)
		if !ok {
			continue
		}
		taken++
		want, err := decodeTJ(b, hdr.Width, hdr.Height, num)
		if err != nil {
			t.Errorf("case %d: split decoded what TurboJPEG refuses (%v)", i, err)
		} else {
			if bytes.Equal(got.ToBytes(), want.ToBytes()) {
				same++
			} else {
				t.Errorf("case %d: split and TurboJPEG pixels differ", i)
			}
			want.Close()
		}
		got.Close()
	}
	t.Logf("%d of 1000 damaged JPEGs decoded (a quarter on one thread), %d identical to TurboJPEG's", taken, same)
	if taken == 0 {
		t.Error("no damaged JPEG was decoded: the corruptions all hit something the test meant to spare")
	}
}

// TestDecodeParallel: Decode, with Parallel or without, gives TurboJPEG's
// image.
func TestDecodeParallel(t *testing.T) {
	for name, b := range map[string][]byte{"bus": readBus(t), "4k": bus4K(t)} {
		a, err := Decode(b, 640, 640, Options{})
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := imageheader.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := decodeTJ(b, hdr.Width, hdr.Height, a.Scale)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Mat.ToBytes(), want.ToBytes()) {
			t.Errorf("%s: Decode differs from TurboJPEG", name)
		}
		want.Close()
		p, err := Decode(b, 640, 640, Options{Parallel: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.Scale != p.Scale || a.Width != p.Width || !bytes.Equal(a.Mat.ToBytes(), p.Mat.ToBytes()) {
			t.Errorf("%s: parallel decode differs (scale %d vs %d)", name, p.Scale, a.Scale)
		}
		a.Close()
		p.Close()
	}
}

// TestLetterboxBesideDecode: a lone JPEG's letterbox, written by the two
// decode threads while the image is still being decoded (imaging_lbjob),
// is the one cv::resize gives after the decode, for every kind of JPEG the
// two-thread decoder takes, several times over (the threads meet
// differently each time).
func TestLetterboxBesideDecode(t *testing.T) {
	for name, b := range splitCases(t) {
		for _, sz := range []image.Point{{640, 640}, {320, 256}} {
			for _, bgr := range []bool{false, true} {
				want := make([]float32, 3*sz.X*sz.Y)
				wp, err := Preprocess(b, want, sz.X, sz.Y, bgr, Options{})
				if err != nil {
					t.Fatal(err)
				}
				lettered := 0
				for i := range 4 {
					got := make([]float32, len(want))
					for k := range got {
						got[k] = -1 // every value must be written
					}
					lt := &lbTarget{dst: got, w: sz.X, h: sz.Y, bgr: bgr}
					im, st, err := decode(b, sz.X, sz.Y, Options{Parallel: true}, lt)
					if err != nil {
						t.Fatal(err)
					}
					im.Close()
					if !st.Lettered {
						continue
					}
					lettered++
					if lt.lb != wp.Letterbox {
						t.Fatalf("%s %v: letterbox %+v, want %+v", name, sz, lt.lb, wp.Letterbox)
					}
					var diffs, worst int
					for k := range want {
						if d := int(math.Round(math.Abs(float64(got[k]-want[k])) * 255)); d > 0 {
							diffs++
							worst = max(worst, d)
						}
					}
					if worst > 1 || diffs > len(want)/1000 {
						t.Errorf("%s into %v (bgr %v, try %d): %d of %d values differ from cv::resize's, by up to %d levels",
							name, sz, bgr, i, diffs, len(want), worst)
					}
				}
				if lettered == 0 {
					t.Errorf("%s into %v: never letterboxed beside the decode", name, sz)
				}
				// Preprocess serves it so for a lone image.
				got := make([]float32, len(want))
				p, err := Preprocess(b, got, sz.X, sz.Y, bgr, Options{Parallel: true})
				if err != nil || p.Letterbox != wp.Letterbox || p.Width != wp.Width || p.Decode <= 0 || p.Preprocess < 0 {
					t.Fatalf("%s: Preprocess %+v, %v; want letterbox %+v", name, p, err, wp.Letterbox)
				}
			}
		}
	}
}

// TestSplitDecodeKeepsThread: decodes on two threads, one after the other,
// all use the one second thread kept between them (a thread made and ended
// for every image slowed the inference that followed it), of both kinds
// (split by rows, and the resynchronising one), and with the letterbox.
func TestSplitDecodeKeepsThread(t *testing.T) {
	bus, big := readBus(t), bus4K(t)
	dst := make([]float32, 3*640*640)
	run := func() {
		for _, b := range [][]byte{bus, big} {
			if _, err := Preprocess(b, dst, 640, 640, false, Options{Parallel: true}); err != nil {
				t.Fatal(err)
			}
			im, err := Decode(b, 640, 640, Options{Parallel: true})
			if err != nil {
				t.Fatal(err)
			}
			im.Close()
		}
	}
	run() // makes the thread if no test before made it
	before, decodes := helperThreads(), ParallelDecodes()
	for range 10 {
		run()
	}
	if n := ParallelDecodes() - decodes; n < 40 {
		t.Fatalf("%d of 40 decodes ran on two threads", n)
	}
	if made := helperThreads() - before; made != 0 || before < 1 {
		t.Errorf("40 two-thread decodes made %d new threads (%d before), want the kept one reused", made, before)
	}
}
