package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/dataroot"
	sdk "github.com/azaion/edge/sdk/trainer"
)

// Splits are the dataset split folders, in order.
var Splits = []string{"train", "valid", "test"}

// DatasetResult says what a dataset job made.
type DatasetResult struct {
	// Dir is the dataset folder.
	Dir string
	// Images counts the images per split.
	Images map[string]int
	// Originals counts the original images per split.
	Originals map[string]int
}

// splitGroups assigns each original key to a split: the keys are sorted,
// shuffled with the seed, and cut at the fractions.
func splitGroups(keys []string, p sdk.DatasetParams) map[string]string {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	r := rand.New(rand.NewPCG(uint64(p.Seed), 0x5eed))
	r.Shuffle(len(sorted), func(i, j int) { sorted[i], sorted[j] = sorted[j], sorted[i] })
	n := len(sorted)
	nTrain := int(math.Round(float64(n) * p.Train))
	nValid := int(math.Round(float64(n) * p.Valid))
	if nTrain+nValid > n {
		nValid = n - nTrain
	}
	out := make(map[string]string, n)
	for i, k := range sorted {
		switch {
		case i < nTrain:
			out[k] = "train"
		case i < nTrain+nValid:
			out[k] = "valid"
		default:
			out[k] = "test"
		}
	}
	return out
}

// link is os.Link; tests replace it to exercise the copy fallback.
var link = os.Link

// linkOrCopy hardlinks src to dst, copying when a link is not possible
// (another file system, or one without hardlinks).
func linkOrCopy(src, dst string) error {
	if err := link(src, dst); err == nil {
		return nil
	}
	if err := copyFile(src, dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// dataYAML is the Ultralytics dataset description.
type dataYAML struct {
	Path  string   `yaml:"path"`
	Train string   `yaml:"train"`
	Val   string   `yaml:"val"`
	Test  string   `yaml:"test"`
	NC    int      `yaml:"nc"`
	Names []string `yaml:"names,flow"`
}

// datasetJob forms datasets/<name>/ from data-processed/: it is built in a
// hidden temporary folder and renamed into place (replacing an older one of
// the same name), so a killed job leaves no half-made dataset.
func datasetJob(ctx context.Context, root string, p sdk.DatasetParams, now time.Time, em *emitter) (*DatasetResult, error) {
	src := filepath.Join(root, dataroot.Processed)
	names, err := listImages(src)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no images in %s: run augment first", filepath.Join(src, dataroot.Images))
	}
	name := p.Name
	if name == "" {
		name = "azaion-" + now.UTC().Format("2006-01-02")
	}
	dsRoot := filepath.Join(root, dataroot.Datasets)
	final := filepath.Join(dsRoot, name)
	if err := mkdirs(dsRoot); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dsRoot, "."+name+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create dataset folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, s := range Splits {
		if err := mkdirs(filepath.Join(tmp, s, dataroot.Images), filepath.Join(tmp, s, dataroot.Labels)); err != nil {
			return nil, err
		}
	}
	groups := map[string][]string{}
	for _, n := range names {
		k := originalKey(n)
		groups[k] = append(groups[k], n)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	assign := splitGroups(keys, p)
	res := &DatasetResult{Dir: final, Images: map[string]int{}, Originals: map[string]int{}}
	for _, k := range keys {
		res.Originals[assign[k]]++
	}
	em.emit(0, "link", fmt.Sprintf("%d images from %d originals", len(names), len(keys)), nil, true)
	start := time.Now()
	for i, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := assign[originalKey(n)]
		if err := linkOrCopy(filepath.Join(src, dataroot.Images, n), filepath.Join(tmp, s, dataroot.Images, n)); err != nil {
			return nil, err
		}
		lp := labelPath(src, n)
		if _, err := os.Stat(lp); err == nil {
			if err := linkOrCopy(lp, labelPath(filepath.Join(tmp, s), n)); err != nil {
				return nil, err
			}
		}
		res.Images[s]++
		em.emit(float64(i+1)/float64(len(names)), "link", "", rateMetrics(i+1, len(names), start, nil), false)
	}
	y, err := yaml.Marshal(dataYAML{Path: final, Train: "train/images", Val: "valid/images", Test: "test/images", NC: classes.Slots, Names: classes.Names()})
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(tmp, filepath.Join(tmp, "data.yaml"), y); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// Swap into place: an older dataset of the same name is moved aside first.
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = filepath.Join(dsRoot, fmt.Sprintf(".%s.old-%d", name, now.UnixNano()))
		if err := os.Rename(final, old); err != nil {
			return nil, fmt.Errorf("replace %s: %w", final, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("publish %s: %w", final, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	metrics := map[string]float64{"images_total": float64(len(names)), "originals": float64(len(keys))}
	for _, s := range Splits {
		metrics["images_"+s] = float64(res.Images[s])
	}
	em.emit(1, "done", fmt.Sprintf("dataset %s: train %d, valid %d, test %d images", final, res.Images["train"], res.Images["valid"], res.Images["test"]), metrics, true)
	return res, nil
}
