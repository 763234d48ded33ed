package trainer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"
	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/sdk/dataroot"
	sdk "github.com/azaion/edge/sdk/trainer"
	"github.com/azaion/edge/sdk/yololabel"
)

// writeImage writes a w x h JPEG with a filled rectangle to dir/images/name
// and the given label text (nil: no label file) to dir/labels.
func writeImage(t testing.TB, dir, name string, w, h int, label []byte) {
	t.Helper()
	if err := mkdirs(filepath.Join(dir, dataroot.Images), filepath.Join(dir, dataroot.Labels)); err != nil {
		t.Fatal(err)
	}
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(40, 90, 140, 0), h, w, gocv.MatTypeCV8UC3)
	defer img.Close()
	gocv.Rectangle(&img, image.Rect(w/4, h/4, w/2, h/2), color.RGBA{250, 250, 0, 0}, -1)
	if !gocv.IMWrite(filepath.Join(dir, dataroot.Images, name), img) {
		t.Fatalf("write %s", name)
	}
	if label != nil {
		if err := os.WriteFile(labelPath(dir, name), label, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var goodLabel = []byte("0 0.375 0.375 0.25 0.25\n21 0.5 0.5 0.2 0.3\n")

func TestValidateJob(t *testing.T) {
	tests := []struct {
		name       string
		label      []byte
		image      []byte // raw bytes instead of a generated JPEG
		background bool
		reason     string // "" = stays in data/
	}{
		{name: "good", label: goodLabel},
		{name: "background allowed", background: true},
		{name: "background refused", reason: "no labels"},
		{name: "empty file is background", label: []byte("\n"), background: true},
		{name: "four fields", label: []byte("0 0.5 0.5 0.2\n"), reason: "4 fields"},
		{name: "reserved class", label: []byte("17 0.5 0.5 0.2 0.2\n"), reason: "class 17"},
		{name: "class 80", label: []byte("80 0.5 0.5 0.2 0.2\n"), reason: "class 80"},
		{name: "nan", label: []byte("1 nan 0.5 0.2 0.2\n"), reason: "not finite"},
		{name: "zero width", label: []byte("1 0.5 0.5 0 0.2\n"), reason: "width"},
		{name: "height over 1", label: []byte("1 0.5 0.5 0.2 1.2\n"), reason: "height"},
		{name: "outside", label: []byte("1 0.95 0.5 0.2 0.2\n"), reason: "outside"},
		{name: "within tolerance", label: []byte("1 0.904 0.5 0.2 0.2\n")},
		{name: "second line bad", label: []byte("1 0.5 0.5 0.2 0.2\nx\n"), reason: "line 2"},
		{name: "not an image", label: goodLabel, image: []byte("hello"), reason: "cannot be decoded"},
	}
	root := t.TempDir()
	data := filepath.Join(root, dataroot.Data)
	for i, tc := range tests {
		name := fmt.Sprintf("img%02d.jpg", i)
		writeImage(t, data, name, 64, 48, tc.label)
		if tc.image != nil {
			os.WriteFile(filepath.Join(data, dataroot.Images, name), tc.image, 0o644)
		}
	}
	// One job per background setting: run refusing backgrounds only on its case.
	p := sdk.ValidateParams{AllowBackground: true, Tolerance: 0.01}
	if err := validateJob(context.Background(), root, p, nil); err != nil {
		t.Fatal(err)
	}
	// The "background refused" case: validate again with backgrounds refused
	// on a root holding only that image.
	root2 := t.TempDir()
	writeImage(t, filepath.Join(root2, dataroot.Data), "bg.jpg", 64, 48, nil)
	if err := validateJob(context.Background(), root2, sdk.ValidateParams{Tolerance: 0.01}, nil); err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, name := root, fmt.Sprintf("img%02d.jpg", i)
			if tc.name == "background refused" {
				r, name = root2, "bg.jpg"
			}
			_, inData := os.Stat(filepath.Join(r, dataroot.Data, dataroot.Images, name))
			_, inCorrupt := os.Stat(filepath.Join(r, dataroot.Corrupted, dataroot.Images, name))
			if tc.reason == "" {
				if inData != nil || inCorrupt == nil {
					t.Fatalf("valid image moved (data: %v, corrupted: %v)", inData, inCorrupt)
				}
				return
			}
			if inData == nil || inCorrupt != nil {
				t.Fatalf("invalid image not moved (data: %v, corrupted: %v)", inData, inCorrupt)
			}
			reason, err := os.ReadFile(filepath.Join(r, dataroot.Corrupted, dirReasons, dataroot.Stem(name)+".txt"))
			if err != nil || !strings.Contains(string(reason), tc.reason) {
				t.Fatalf("reason %q (%v), want %q", reason, err, tc.reason)
			}
			if tc.label != nil {
				if _, err := os.Stat(labelPath(filepath.Join(r, dataroot.Corrupted), name)); err != nil {
					t.Fatalf("label not moved with the image: %v", err)
				}
				if _, err := os.Stat(labelPath(filepath.Join(r, dataroot.Data), name)); err == nil {
					t.Fatal("label left in data/")
				}
			}
		})
	}
}

// snapshot returns name -> contents of every file under dir.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

func testParams(workers int) sdk.AugmentParams {
	p := sdk.DefaultAugmentParams()
	p.Workers = workers
	p.Seed = 42
	return p
}

func TestAugmentDeterministicIdempotent(t *testing.T) {
	roots := []string{t.TempDir(), t.TempDir()}
	for _, r := range roots {
		for i := 0; i < 4; i++ {
			writeImage(t, filepath.Join(r, dataroot.Data), fmt.Sprintf("p%d.jpg", i), 160, 120, goodLabel)
		}
		writeImage(t, filepath.Join(r, dataroot.Data), "bg.jpg", 160, 120, nil)
		writeImage(t, filepath.Join(r, dataroot.Data), "bad.jpg", 160, 120, []byte("99 0.5 0.5 0.1 0.1\n"))
	}
	var events []sdk.Event
	em := &emitter{fn: func(e sdk.Event) { events = append(events, e) }}
	if err := augmentJob(context.Background(), roots[0], testParams(2), em, nil); err != nil {
		t.Fatal(err)
	}
	if err := augmentJob(context.Background(), roots[1], testParams(1), nil, nil); err != nil {
		t.Fatal(err)
	}
	a, b := snapshot(t, filepath.Join(roots[0], dataroot.Processed)), snapshot(t, filepath.Join(roots[1], dataroot.Processed))
	if len(a) != 5*8*2 {
		t.Fatalf("%d output files, want %d", len(a), 5*8*2)
	}
	for k, v := range a {
		if b[k] != v {
			t.Fatalf("%s differs between 2 workers and 1 worker with the same seed", k)
		}
	}
	if _, err := os.Stat(filepath.Join(roots[0], dataroot.Corrupted, dataroot.Images, "bad.jpg")); err != nil {
		t.Fatalf("bad.jpg not moved to data-corrupted: %v", err)
	}
	for k := 1; k <= 7; k++ {
		if _, ok := a[filepath.Join(dataroot.Labels, fmt.Sprintf("p0_aug%d.txt", k))]; !ok {
			t.Fatalf("variant %d of p0 missing", k)
		}
	}
	if last := events[len(events)-1]; last.Stage != "done" || last.Progress != 1 {
		t.Fatalf("last event %+v", last)
	}
	// Every variant's labels stay valid.
	for k, v := range a {
		if strings.HasPrefix(k, dataroot.Labels) {
			boxes, err := yololabel.Parse(strings.NewReader(v))
			if err != nil {
				t.Fatal(k, err)
			}
			for _, bx := range boxes {
				if r := yololabel.Check(bx, yololabel.CheckOptions{Tolerance: 1e-6}); r != "" {
					t.Fatalf("%s: %s", k, r)
				}
			}
		}
	}
	// Idempotent: a second run writes nothing.
	before := map[string]time.Time{}
	filepath.Walk(filepath.Join(roots[0], dataroot.Processed), func(p string, info os.FileInfo, err error) error {
		before[p] = info.ModTime()
		return nil
	})
	time.Sleep(10 * time.Millisecond)
	events = nil
	if err := augmentJob(context.Background(), roots[0], testParams(2), em, nil); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(filepath.Join(roots[0], dataroot.Processed), func(p string, info os.FileInfo, err error) error {
		if info.Mode().IsRegular() && !info.ModTime().Equal(before[p]) {
			t.Errorf("second run rewrote %s", p)
		}
		return nil
	})
	if m := events[len(events)-1].Metrics; m["outputs_written"] != 0 || m["images_total"] != 0 {
		t.Fatalf("second run metrics %v", m)
	}
}

func TestAugmentWatchPicksUpNewImages(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, dataroot.Data)
	writeImage(t, data, "a.jpg", 96, 64, goodLabel)
	p := testParams(1)
	p.Watch, p.WatchSeconds = true, 0.05
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- augmentJob(ctx, root, p, nil, nil) }()
	waitFor := func(name string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !augmented(filepath.Join(root, dataroot.Processed), name, 7) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not augmented in watch mode", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("a.jpg")
	writeImage(t, data, "b.jpg", 96, 64, goodLabel)
	waitFor("b.jpg")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v, want context.Canceled", err)
	}
}

// TestAugmentKilledRunLeavesNoPartialFiles kills a child process mid-run
// with SIGKILL and checks that every output under its final name is whole,
// then that a new run completes the outputs and cleans the temporary folder.
func TestAugmentKilledRunLeavesNoPartialFiles(t *testing.T) {
	if os.Getenv("AZAION_TRAINER_CHILD") != "" {
		p := testParams(2)
		if err := augmentJob(context.Background(), os.Getenv("AZAION_TRAINER_CHILD"), p, nil, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	root := t.TempDir()
	for i := 0; i < 12; i++ {
		writeImage(t, filepath.Join(root, dataroot.Data), fmt.Sprintf("k%02d.jpg", i), 1280, 720, goodLabel)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAugmentKilledRunLeavesNoPartialFiles$")
	cmd.Env = append(os.Environ(), "AZAION_TRAINER_CHILD="+root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, dataroot.Processed)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(out, dataroot.Images))
		if len(ents) >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	images, _ := listImages(out)
	if len(images) == 0 || len(images) >= 12*8 {
		t.Fatalf("%d images written before the kill; want a partial run", len(images))
	}
	for _, n := range images {
		m := gocv.IMRead(filepath.Join(out, dataroot.Images, n), gocv.IMReadColor)
		if m.Empty() || m.Cols() != 1280 {
			t.Errorf("%s is not a whole image", n)
		}
		m.Close()
	}
	labels, _ := os.ReadDir(filepath.Join(out, dataroot.Labels))
	for _, l := range labels {
		if _, err := yololabel.ReadFile(filepath.Join(out, dataroot.Labels, l.Name())); err != nil {
			t.Errorf("label %s: %v", l.Name(), err)
		}
		if _, err := os.Stat(filepath.Join(out, dataroot.Images, strings.TrimSuffix(l.Name(), ".txt")+".jpg")); err != nil {
			t.Errorf("label %s has no image", l.Name())
		}
	}
	if err := augmentJob(context.Background(), root, testParams(2), nil, nil); err != nil {
		t.Fatal(err)
	}
	images, _ = listImages(out)
	tmp, _ := os.ReadDir(filepath.Join(out, dirTmp))
	if len(images) != 12*8 || len(tmp) != 0 {
		t.Fatalf("after the rerun: %d images (want 96), %d temporary files (want 0)", len(images), len(tmp))
	}
}

func TestDatasetSplitByOriginal(t *testing.T) {
	root := t.TempDir()
	proc := filepath.Join(root, dataroot.Processed)
	mkdirs(filepath.Join(proc, dataroot.Images), filepath.Join(proc, dataroot.Labels))
	const originals = 60
	for i := 0; i < originals; i++ {
		for k := 0; k <= 7; k++ {
			n := variantName(fmt.Sprintf("o%03d.jpg", i), k)
			os.WriteFile(filepath.Join(proc, dataroot.Images, n), []byte(n), 0o644)
			os.WriteFile(labelPath(proc, n), []byte("0 0.5 0.5 0.1 0.1\n"), 0o644)
		}
	}
	p := sdk.DefaultDatasetParams()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	res, err := datasetJob(context.Background(), root, p, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, dataroot.Datasets, "azaion-2026-11-28")
	if res.Dir != dir {
		t.Fatalf("dataset at %s", res.Dir)
	}
	where := map[string]string{}
	for _, s := range Splits {
		names, _ := listImages(filepath.Join(dir, s))
		for _, n := range names {
			k := originalKey(n)
			if prev, ok := where[k]; ok && prev != s {
				t.Fatalf("original %s is in both %s and %s", k, prev, s)
			}
			where[k] = s
			if _, err := os.Stat(labelPath(filepath.Join(dir, s), n)); err != nil {
				t.Fatalf("%s/%s has no label", s, n)
			}
		}
	}
	if len(where) != originals || res.Originals["train"] != 42 || res.Originals["valid"] != 12 || res.Originals["test"] != 6 {
		t.Fatalf("split %v of %d originals", res.Originals, len(where))
	}
	if res.Images["train"] != 42*8 {
		t.Fatalf("train has %d images", res.Images["train"])
	}
	// Hardlinked, not copied.
	a, _ := os.Stat(filepath.Join(proc, dataroot.Images, "o000.jpg"))
	b, _ := os.Stat(filepath.Join(dir, where["o000"], dataroot.Images, "o000.jpg"))
	if !os.SameFile(a, b) {
		t.Fatal("dataset image is not a hardlink of data-processed/")
	}
	var y dataYAML
	raw, _ := os.ReadFile(filepath.Join(dir, "data.yaml"))
	if err := yaml.Unmarshal(raw, &y); err != nil || y.NC != 80 || len(y.Names) != 80 || y.Names[20] != "ArmorVehicle(Wint)" || y.Val != "valid/images" {
		t.Fatalf("data.yaml %+v: %v", y, err)
	}
	// The same seed gives the same split (rebuilt in place); another seed a different one.
	first := fmt.Sprint(sortedSplit(where))
	res2, err := datasetJob(context.Background(), root, p, now, nil)
	if err != nil || fmt.Sprint(res2.Originals) != fmt.Sprint(res.Originals) {
		t.Fatal(res2, err)
	}
	p.Seed = 7
	p.Name = "other"
	if _, err := datasetJob(context.Background(), root, p, now, nil); err != nil {
		t.Fatal(err)
	}
	other := map[string]string{}
	for _, s := range Splits {
		names, _ := listImages(filepath.Join(root, dataroot.Datasets, "other", s))
		for _, n := range names {
			other[originalKey(n)] = s
		}
	}
	if fmt.Sprint(sortedSplit(other)) == first {
		t.Fatal("seed 7 gave the same split as seed 1")
	}
	ents, _ := os.ReadDir(filepath.Join(root, dataroot.Datasets))
	if len(ents) != 2 {
		t.Fatalf("datasets/ holds %d entries (temporary folders left?)", len(ents))
	}
}

func sortedSplit(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func TestDatasetCopiesWhenLinksFail(t *testing.T) {
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	defer func() { link = os.Link }()
	root := t.TempDir()
	proc := filepath.Join(root, dataroot.Processed)
	mkdirs(filepath.Join(proc, dataroot.Images), filepath.Join(proc, dataroot.Labels))
	for i := 0; i < 5; i++ {
		n := fmt.Sprintf("c%d.jpg", i)
		os.WriteFile(filepath.Join(proc, dataroot.Images, n), []byte("image "+n), 0o644)
		os.WriteFile(labelPath(proc, n), []byte("1 0.5 0.5 0.1 0.1\n"), 0o644)
	}
	p := sdk.DefaultDatasetParams()
	p.Name = "copied"
	res, err := datasetJob(context.Background(), root, p, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for s, n := range res.Images {
		names, _ := listImages(filepath.Join(res.Dir, s))
		if len(names) != n {
			t.Fatalf("%s: %d images, want %d", s, len(names), n)
		}
		for _, name := range names {
			a, _ := os.Stat(filepath.Join(proc, dataroot.Images, name))
			b, _ := os.Stat(filepath.Join(res.Dir, s, dataroot.Images, name))
			data, _ := os.ReadFile(filepath.Join(res.Dir, s, dataroot.Images, name))
			if os.SameFile(a, b) || string(data) != "image "+name {
				t.Fatalf("%s was not copied whole", name)
			}
		}
	}
}
