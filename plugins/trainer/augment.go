package trainer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"gocv.io/x/gocv"

	"github.com/azaion/edge/sdk/dataroot"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yololabel"
)

// variantName returns the output file name of variant k (0 = the original,
// which keeps its name and extension) of image name.
func variantName(name string, k int) string {
	if k == 0 {
		return name
	}
	return fmt.Sprintf("%s_aug%d.jpg", dataroot.Stem(name), k)
}

var augSuffix = regexp.MustCompile(`_aug[0-9]+$`)

// originalKey returns the key of the original image an output file of
// data-processed/ came from (its stem without an _augN suffix).
func originalKey(name string) string { return augSuffix.ReplaceAllString(dataroot.Stem(name), "") }

// augmented reports whether every output of image name exists in out. The
// label of each output is written after its image, so an existing label
// means a complete pair.
func augmented(out, name string, variants int) bool {
	for k := 0; k <= variants; k++ {
		if _, err := os.Stat(labelPath(out, variantName(name, k))); err != nil {
			return false
		}
	}
	return true
}

// augmenter holds what the workers share.
type augmenter struct {
	root, in, out, tmp string
	p                  sdk.AugmentParams
	log                hclog.Logger
	written, dropped   atomic.Int64
	corrupted          atomic.Int64
}

func newAugmenter(root string, p sdk.AugmentParams, log hclog.Logger) (*augmenter, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a := &augmenter{root: root, in: filepath.Join(root, dataroot.Data), out: filepath.Join(root, dataroot.Processed), p: p, log: log}
	a.tmp = filepath.Join(a.out, dirTmp)
	// A previous run killed mid-write may have left temporary files: they
	// are never visible under their final names, so removing them is safe.
	if err := os.RemoveAll(a.tmp); err != nil {
		return nil, fmt.Errorf("clean %s: %w", a.tmp, err)
	}
	if err := mkdirs(filepath.Join(a.out, dataroot.Images), filepath.Join(a.out, dataroot.Labels), a.tmp); err != nil {
		return nil, fmt.Errorf("create %s: %w", a.out, err)
	}
	return a, nil
}

// pending lists the images of data/ that have no complete outputs.
func (a *augmenter) pending() ([]string, error) {
	names, err := listImages(a.in)
	if err != nil {
		return nil, err
	}
	var todo []string
	for _, n := range names {
		if !augmented(a.out, n, a.p.Variants) {
			todo = append(todo, n)
		}
	}
	return todo, nil
}

// augmentJob runs one pass over data/ (or, with Watch, passes until ctx ends).
func augmentJob(ctx context.Context, root string, p sdk.AugmentParams, em *emitter, log hclog.Logger) error {
	a, err := newAugmenter(root, p, log)
	if err != nil {
		return err
	}
	for {
		todo, err := a.pending()
		if err != nil {
			return err
		}
		if len(todo) > 0 || !p.Watch {
			if err := a.run(ctx, todo, em); err != nil {
				return err
			}
		}
		if !p.Watch {
			return nil
		}
		em.emit(1, "watch", "waiting for new images", a.totals(), true)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(p.WatchSeconds * float64(time.Second))):
		}
	}
}

func (a *augmenter) totals() map[string]float64 {
	return map[string]float64{"outputs_written": float64(a.written.Load()), "boxes_dropped": float64(a.dropped.Load()), "corrupted": float64(a.corrupted.Load())}
}

// run augments the images in todo with parallel workers.
func (a *augmenter) run(ctx context.Context, todo []string, em *emitter) error {
	workers := a.p.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, max(len(todo), 1))
	em.emit(0, "augment", fmt.Sprintf("%d images to augment with %d workers", len(todo), workers), rateMetrics(0, len(todo), time.Now(), nil), true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	var (
		wg       sync.WaitGroup
		done     atomic.Int64
		errOnce  sync.Once
		firstErr error
		start    = time.Now()
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// OpenCV's random generator is per thread: keep this worker on
			// one thread so seeded noise is deterministic.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			nf := newNoiseFields(a.p.Seed, a.p.NoiseStd)
			defer nf.close()
			for name := range jobs {
				if err := a.image(ctx, name, nf); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				n := int(done.Add(1))
				em.emit(float64(n)/float64(len(todo)), "augment", "", rateMetrics(n, len(todo), start, a.totals()), n == len(todo))
			}
		}()
	}
feed:
	for _, n := range todo {
		select {
		case jobs <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	em.emit(1, "done", fmt.Sprintf("%d images augmented", len(todo)), rateMetrics(len(todo), len(todo), start, a.totals()), true)
	return nil
}

// image validates and augments one image of data/.
func (a *augmenter) image(ctx context.Context, name string, nf *noiseFields) error {
	src := filepath.Join(a.in, dataroot.Images, name)
	boxes, reason := checkLabels(labelPath(a.in, name), a.p.Checks)
	var img gocv.Mat
	if reason == "" {
		img = gocv.IMRead(src, gocv.IMReadColor)
		defer img.Close()
		if img.Empty() {
			reason = "image cannot be decoded"
		}
	}
	if reason != "" {
		a.corrupted.Add(1)
		a.log.Warn("corrupted image moved", "image", name, "reason", reason)
		return moveCorrupted(a.root, a.in, name, reason)
	}
	orig, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := a.writePair(variantName(name, 0), orig, boxes); err != nil {
		return err
	}
	w, h := img.Cols(), img.Rows()
	for k := 1; k <= a.p.Variants; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		pl := makePlan(a.p, dataroot.Stem(name), k, w, h)
		out, err := applyPlan(img, pl, nf)
		if err != nil {
			return fmt.Errorf("augment %s variant %d: %w", name, k, err)
		}
		nb, dropped := boxes, 0
		if pl.hasGeo {
			nb, dropped = transformBoxes(boxes, pl.geo, w, h, a.p.MinVisible)
		}
		a.dropped.Add(int64(dropped))
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, out, []int{gocv.IMWriteJpegQuality, a.p.JPEGQuality})
		out.Close()
		if err != nil {
			return fmt.Errorf("encode %s variant %d: %w", name, k, err)
		}
		err = a.writePair(variantName(name, k), buf.GetBytes(), nb)
		buf.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writePair writes an output image and then its label file.
func (a *augmenter) writePair(name string, img []byte, boxes []yololabel.Box) error {
	if err := writeAtomic(a.tmp, filepath.Join(a.out, dataroot.Images, name), img); err != nil {
		return err
	}
	if err := writeAtomic(a.tmp, labelPath(a.out, name), yololabel.Format(boxes)); err != nil {
		return err
	}
	a.written.Add(1)
	return nil
}

// noisePad is how far noise windows may be offset in a noise field.
const noisePad = 64

// noiseFields are one worker's Gaussian noise fields (mean 128, standard
// deviation std), one per image size, each noisePad larger than the image
// both ways. A field depends only on the seed and the size, so outputs do
// not depend on which worker made them; drawing one field per size instead
// of fresh noise per variant saves most of the cost of noise.
type noiseFields struct {
	seed   int64
	std    float64
	fields map[image.Point]gocv.Mat
}

func newNoiseFields(seed int64, std float64) *noiseFields {
	return &noiseFields{seed: seed, std: std, fields: map[image.Point]gocv.Mat{}}
}

// field returns the field for images of w x h. The caller's goroutine must
// be locked to its OS thread (OpenCV's generator is per thread).
func (n *noiseFields) field(w, h int) gocv.Mat {
	k := image.Pt(w, h)
	if f, ok := n.fields[k]; ok {
		return f
	}
	if len(n.fields) >= 8 { // many image sizes: keep memory bounded
		n.close()
	}
	f := gocv.NewMatWithSize(h+noisePad, w+noisePad, gocv.MatTypeCV8UC3)
	gocv.SetRNGSeed(int(n.seed ^ int64(w)<<32 ^ int64(h)))
	gocv.RandN(&f, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(n.std, n.std, n.std, 0))
	n.fields[k] = f
	return f
}

func (n *noiseFields) close() {
	for k, f := range n.fields {
		f.Close()
		delete(n.fields, k)
	}
}

// applyPlan returns a new Mat: src with the plan's transforms applied
// (geometry first, then colour, blur and noise from nf).
func applyPlan(src gocv.Mat, pl plan, nf *noiseFields) (gocv.Mat, error) {
	img := src
	owned := false
	swap := func(dst gocv.Mat) {
		if owned {
			img.Close()
		}
		img, owned = dst, true
	}
	w, h := src.Cols(), src.Rows()
	if pl.hasGeo {
		dst := gocv.NewMat()
		if pl.flipOnly {
			gocv.Flip(img, &dst, 1)
		} else if cv := pl.geo.opencv(); cv.isAffine() {
			m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
			for i := 0; i < 6; i++ {
				m.SetDoubleAt(i/3, i%3, cv[i])
			}
			gocv.WarpAffineWithParams(img, &dst, m, image.Pt(w, h), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
			m.Close()
		} else {
			m := gocv.NewMatWithSize(3, 3, gocv.MatTypeCV64F)
			for i := 0; i < 9; i++ {
				m.SetDoubleAt(i/3, i%3, cv[i])
			}
			gocv.WarpPerspectiveWithParams(img, &dst, m, image.Pt(w, h), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
			m.Close()
		}
		swap(dst)
	}
	if pl.bc {
		dst := gocv.NewMat()
		img.ConvertToWithParams(&dst, gocv.MatTypeCV8UC3, float32(pl.alpha), float32(pl.beta))
		swap(dst)
	}
	if pl.hsv {
		lut, err := gocv.NewMatFromBytes(1, 256, gocv.MatTypeCV8UC3, hsvLUT(pl.hueShift, pl.satScale))
		if err != nil {
			if owned {
				img.Close()
			}
			return gocv.Mat{}, err
		}
		hsv := gocv.NewMat()
		gocv.CvtColor(img, &hsv, gocv.ColorBGRToHSV)
		dst := gocv.NewMat()
		gocv.LUT(hsv, lut, &dst)
		gocv.CvtColor(dst, &hsv, gocv.ColorHSVToBGR)
		dst.Close()
		lut.Close()
		swap(hsv)
	}
	if pl.blurK > 0 {
		dst := gocv.NewMat()
		gocv.GaussianBlur(img, &dst, image.Pt(pl.blurK, pl.blurK), 0, 0, gocv.BorderReflect101)
		swap(dst)
	}
	if pl.noiseStd > 0 && nf != nil {
		field := nf.field(w, h)
		win := field.Region(image.Rect(pl.noiseOff.X, pl.noiseOff.Y, pl.noiseOff.X+w, pl.noiseOff.Y+h))
		a := pl.noiseStd / nf.std
		dst := gocv.NewMat()
		gocv.AddWeighted(img, 1, win, a, -128*a, &dst)
		win.Close()
		swap(dst)
	}
	if !owned {
		return src.Clone(), nil
	}
	return img, nil
}
