package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
	"github.com/azaion/edge/sdk/dataroot"
)

// writeModes are the store's ways of writing new files: unnamed files
// linked into place (O_TMPFILE, Linux with syncfs), temporary names renamed
// into place with syncfs, and the same with fsyncs.
var writeModes = []string{"tmpfile", "named", "fsync"}

// newTestStore opens a store on root that writes new files the way mode says.
func newTestStore(t testing.TB, root, mode string) *Store {
	t.Helper()
	sync := ""
	if mode == "fsync" {
		sync = SyncFiles
	}
	s, err := NewStore(root, annotation.DecodeOptions{}, sync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	switch mode {
	case "tmpfile":
		if !s.tmpfile {
			if runtime.GOOS == "linux" {
				t.Fatalf("O_TMPFILE + linkat do not work in %s", root)
			}
			t.Log("no O_TMPFILE here: the named path is tested instead")
		}
	case "named", "fsync":
		s.tmpfile = false
	}
	return s
}

// TestStoreUnnamedUntilCommitted: a prepared batch's files have no name at
// all (tmpfile) or only a temporary one, so a crash before the commit leaves
// nothing at a final name, and a restart clears what is left and applies the
// batch from scratch.
func TestStoreUnnamedUntilCommitted(t *testing.T) {
	img := annotationtest.JPEG(3, 32, 32)
	a := annotationtest.Created(7, img)
	msgs := []Message{{Offset: 0, Body: annotationtest.MustEncode(a)}, {Offset: 1, Body: []byte("not msgpack")}}
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			s := newTestStore(t, root, mode)
			p, err := s.Prepare(msgs)
			if err != nil {
				t.Fatal(err)
			}
			files := tree(t, root)
			for _, f := range files {
				if !bytes.HasPrefix([]byte(f), []byte(tmpDir+"/")) {
					t.Errorf("prepared batch: %s is visible outside %s", f, tmpDir)
				}
			}
			if s.tmpfile && len(files) != 0 {
				t.Errorf("prepared unnamed files have names: %v", files)
			}
			if !s.tmpfile && len(files) != 4 {
				t.Errorf("prepared named files: %v, want 4 temporary files", files)
			}
			// The crash: the prepared batch is never committed (and the
			// process's lock on the data root goes with it).
			p.Close()
			s.Close()
			s = newTestStore(t, root, mode)
			if files := tree(t, root); len(files) != 0 {
				t.Fatalf("after a restart: %v", files)
			}
			res, err := s.ApplyBatch(msgs)
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != 1 || len(res.Rejected) != 1 {
				t.Fatalf("applied %d, rejected %v", res.Applied, res.Rejected)
			}
			want := map[string][]byte{
				filepath.Join(RejectsDir, "1.msgpack"):                msgs[1].Body,
				filepath.Join(RejectsDir, "1.txt"):                    []byte(res.Rejected[0].line()),
				filepath.Join(dataroot.Seed, "images", a.Name+".jpg"): img,
				filepath.Join(dataroot.Seed, "labels", a.Name+".txt"): labelBytes(a.Labels),
			}
			if got := tree(t, root); len(got) != len(want) {
				t.Fatalf("files %v, want %d", got, len(want))
			}
			for f, data := range want {
				if b, err := os.ReadFile(filepath.Join(root, f)); err != nil || !bytes.Equal(b, data) {
					t.Errorf("%s: %d bytes, %v; want %d bytes", f, len(b), err, len(data))
				}
			}
		})
	}
}

// TestStoreReplaceExisting: when the final name exists already (a replay,
// an edit, a new image), the new file replaces it whole and nothing is left
// under a temporary name; a reader holding the old file keeps the old
// content (it was replaced, never rewritten in place).
func TestStoreReplaceExisting(t *testing.T) {
	img1, img2 := annotationtest.JPEG(4, 32, 32), annotationtest.JPEG(5, 48, 32)
	first := annotationtest.Created(9, img1)
	second := annotationtest.Created(9, img2)
	second.Labels = []annotation.Box{{Class: 3, CX: 0.5, CY: 0.5, W: 0.5, H: 0.5}}
	edit := &annotation.Annotation{Name: first.Name, Op: annotation.Edited, Author: "t",
		Labels: []annotation.Box{{Class: 4, CX: 0.25, CY: 0.25, W: 0.1, H: 0.1}}}
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			s := newTestStore(t, root, mode)
			imgPath := filepath.Join(root, dataroot.Seed, "images", first.Name+".jpg")
			lblPath := filepath.Join(root, dataroot.Seed, "labels", first.Name+".txt")
			apply := func(off int64, a *annotation.Annotation) {
				t.Helper()
				res, err := s.ApplyBatch([]Message{{Offset: off, Body: annotationtest.MustEncode(a)}})
				if err != nil || res.Applied != 1 {
					t.Fatalf("offset %d: applied %d, %v", off, res.Applied, err)
				}
			}
			apply(0, first)
			old, err := os.Open(imgPath)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			apply(0, first) // replay: same content again
			apply(1, second)
			if b, _ := os.ReadFile(imgPath); !bytes.Equal(b, img2) {
				t.Error("the image was not replaced by the second created event's")
			}
			if b, _ := os.ReadFile(lblPath); !bytes.Equal(b, labelBytes(second.Labels)) {
				t.Errorf("labels %q, want %q", b, labelBytes(second.Labels))
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(old); err != nil || !bytes.Equal(buf.Bytes(), img1) {
				t.Errorf("the old image was rewritten in place (read %d bytes, %v)", buf.Len(), err)
			}
			apply(2, edit)
			if b, _ := os.ReadFile(lblPath); !bytes.Equal(b, labelBytes(edit.Labels)) {
				t.Errorf("edited labels %q, want %q", b, labelBytes(edit.Labels))
			}
			if files := tree(t, filepath.Join(root, tmpDir)); len(files) != 0 {
				t.Fatalf("temporary files left: %v", files)
			}
		})
	}
}

// TestStoreClearsLeftovers: a start removes what an earlier run left in the
// temporary folder (files and worker folders) and makes its own folders.
func TestStoreClearsLeftovers(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"0/12.img", "old-3/5.txt", "state-9.msgpack"} {
		p := filepath.Join(root, tmpDir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestStore(t, root, "tmpfile")
	if files := tree(t, filepath.Join(root, tmpDir)); len(files) != 0 {
		t.Fatalf("leftovers: %v", files)
	}
	ents, err := os.ReadDir(filepath.Join(root, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != s.workers || len(s.work) != s.workers {
		t.Fatalf("%d entries in %s, %d worker folders; want %d", len(ents), tmpDir, len(s.work), s.workers)
	}
	for _, w := range s.work {
		if st, err := os.Stat(w); err != nil || !st.IsDir() {
			t.Fatalf("worker folder %s: %v", w, err)
		}
	}
}

// TestStoreStateRejects: a message that decodes but cannot apply to what is
// on disk is set aside, and its prepared files leave nothing behind.
func TestStoreStateRejects(t *testing.T) {
	edit := &annotation.Annotation{Name: "nobody", Op: annotation.Edited, Author: "t",
		Labels: []annotation.Box{{Class: 1, CX: 0.5, CY: 0.5, W: 0.1, H: 0.1}}}
	validated := &annotation.Annotation{Name: "noimage", Op: annotation.Validated, Author: "t"}
	msgs := []Message{{Offset: 4, Body: annotationtest.MustEncode(edit)}, {Offset: 5, Body: annotationtest.MustEncode(validated)}}
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			s := newTestStore(t, root, mode)
			res, err := s.ApplyBatch(msgs)
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != 0 || len(res.Rejected) != 2 || res.Rejected[0].Reason != ReasonNotFound || res.Rejected[1].Reason != ReasonNoImage {
				t.Fatalf("applied %d, rejected %+v", res.Applied, res.Rejected)
			}
			want := []string{"rejects/4.msgpack", "rejects/4.txt", "rejects/5.msgpack", "rejects/5.txt"}
			if got := tree(t, root); len(got) != len(want) {
				t.Fatalf("files %v, want %v", got, want)
			}
			for _, f := range want {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
