package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/annotation/annotationtest"
	"github.com/azaion/edge/sdk/dataroot"
)

// seqCase is one annotation's event sequence and where it must end.
type seqCase struct {
	name   string
	events []*annotation.Annotation
	folder string // "" when nothing may be left anywhere
	ext    string
	image  []byte
	labels []annotation.Box
}

func sequenceMessages() ([][]byte, []seqCase) {
	img1, img2 := annotationtest.JPEG(1, 16, 16), annotationtest.JPEG(2, 24, 16)
	png := annotationtest.PNG(8, 8)
	l1 := []annotation.Box{{Class: 1, CX: 0.5, CY: 0.5, W: 0.2, H: 0.2}}
	l2 := []annotation.Box{{Class: 21, CX: 0.25, CY: 0.75, W: 0.1, H: 0.3}, {Class: 42, CX: 0.6, CY: 0.6, W: 0.05, H: 0.05}}
	l3 := []annotation.Box{}
	ev := func(name string, op annotation.Operation, img []byte, labels []annotation.Box) *annotation.Annotation {
		a := &annotation.Annotation{Name: name, Op: op, Author: "t", Image: img, Labels: labels}
		if img != nil {
			a.ImageFormat = "jpg"
			if bytes.Equal(img, png) {
				a.ImageFormat = "png"
			}
		}
		return a
	}
	C, V, E, D := annotation.Created, annotation.Validated, annotation.Edited, annotation.Deleted
	cases := []seqCase{
		{name: "created", events: []*annotation.Annotation{ev("created", C, img1, l1)}, folder: dataroot.Seed, ext: "jpg", image: img1, labels: l1},
		{name: "validated", events: []*annotation.Annotation{ev("validated", C, img1, l1), ev("validated", V, nil, l2)}, folder: dataroot.Data, ext: "jpg", image: img1, labels: l2},
		{name: "val_img", events: []*annotation.Annotation{ev("val_img", V, img2, l1)}, folder: dataroot.Data, ext: "jpg", image: img2, labels: l1},
		{name: "c_v_img", events: []*annotation.Annotation{ev("c_v_img", C, img1, l1), ev("c_v_img", V, img2, l2)}, folder: dataroot.Data, ext: "jpg", image: img2, labels: l2},
		{name: "edited_seed", events: []*annotation.Annotation{ev("edited_seed", C, img1, l1), ev("edited_seed", E, nil, l2)}, folder: dataroot.Seed, ext: "jpg", image: img1, labels: l2},
		{name: "c_v_e", events: []*annotation.Annotation{ev("c_v_e", C, img1, l1), ev("c_v_e", V, nil, l1), ev("c_v_e", E, nil, l3)}, folder: dataroot.Data, ext: "jpg", image: img1, labels: l3},
		{name: "full", events: []*annotation.Annotation{ev("full", C, img1, l1), ev("full", V, nil, l1), ev("full", E, nil, l2), ev("full", D, nil, nil)}, folder: dataroot.Deleted, ext: "jpg", image: img1, labels: l2},
		{name: "c_d", events: []*annotation.Annotation{ev("c_d", C, img2, l1), ev("c_d", D, nil, nil)}, folder: dataroot.Deleted, ext: "jpg", image: img2, labels: l1},
		{name: "recreate", events: []*annotation.Annotation{ev("recreate", C, img1, l1), ev("recreate", D, nil, nil), ev("recreate", C, img2, l2)}, folder: dataroot.Seed, ext: "jpg", image: img2, labels: l2},
		{name: "del_unknown", events: []*annotation.Annotation{ev("del_unknown", D, nil, nil)}},
		{name: "png", events: []*annotation.Annotation{ev("png", C, png, l1), ev("png", V, nil, l1)}, folder: dataroot.Data, ext: "png", image: png, labels: l1},
		{name: "twice", events: []*annotation.Annotation{ev("twice", C, img1, l1), ev("twice", C, img1, l1), ev("twice", V, nil, l2), ev("twice", V, nil, l2)}, folder: dataroot.Data, ext: "jpg", image: img1, labels: l2},
	}
	var msgs [][]byte
	for k := 0; ; k++ {
		any := false
		for _, c := range cases {
			if k < len(c.events) {
				msgs = append(msgs, annotationtest.MustEncode(c.events[k]))
				any = true
			}
		}
		if !any {
			break
		}
	}
	return msgs, cases
}

func checkSequences(t *testing.T, root string, cases []seqCase) {
	t.Helper()
	for _, c := range cases {
		for _, f := range folders {
			for _, e := range dataroot.ImageExts {
				p := filepath.Join(root, f, "images", c.name+"."+e)
				b, err := os.ReadFile(p)
				if f == c.folder && e == c.ext {
					if err != nil || !bytes.Equal(b, c.image) {
						t.Errorf("%s: image %s: %v (right bytes: %v)", c.name, p, err, bytes.Equal(b, c.image))
					}
				} else if err == nil {
					t.Errorf("%s: stray image %s", c.name, p)
				}
			}
			p := filepath.Join(root, f, "labels", c.name+".txt")
			b, err := os.ReadFile(p)
			if f == c.folder {
				if want := labelBytes(c.labels); err != nil || !bytes.Equal(b, want) {
					t.Errorf("%s: labels %s = %q, %v; want %q", c.name, p, b, err, want)
				}
			} else if err == nil {
				t.Errorf("%s: stray labels %s", c.name, p)
			}
		}
	}
}

func toMessages(bodies [][]byte) []Message {
	out := make([]Message, len(bodies))
	for i, b := range bodies {
		out[i] = Message{Offset: int64(i), Body: b}
	}
	return out
}

func applyAll(t *testing.T, s *Store, msgs []Message, batch int) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(batch, len(msgs))
		if _, err := s.ApplyBatch(msgs[:n]); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

func TestStoreSequences(t *testing.T) {
	for _, mode := range writeModes {
		for _, batch := range []int{1, 3, 100} {
			t.Run(mode+" batch "+itoa64(int64(batch)), func(t *testing.T) {
				bodies, cases := sequenceMessages()
				root := t.TempDir()
				s := newTestStore(t, root, mode)
				applyAll(t, s, toMessages(bodies), batch)
				checkSequences(t, root, cases)
				if files := tree(t, filepath.Join(root, tmpDir)); len(files) != 0 {
					t.Fatalf("temporary files left: %v", files)
				}
			})
		}
	}
}

// TestStoreReplay simulates a crash after any message k with the offset
// stored at any earlier j: re-applying messages j.. must end in the same
// files as applying everything once.
func TestStoreReplay(t *testing.T) {
	bodies, cases := sequenceMessages()
	msgs := toMessages(bodies)
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			for k := 0; k <= len(msgs); k += 2 {
				for j := 0; j <= k; j += 3 {
					root := t.TempDir()
					s := newTestStore(t, root, mode)
					applyAll(t, s, msgs[:k], 4)
					// A restart: a new store on the same root.
					s.Close()
					s = newTestStore(t, root, mode)
					applyAll(t, s, msgs[j:], 5)
					checkSequences(t, root, cases)
					if t.Failed() {
						t.Fatalf("crash after %d, replay from %d", k, j)
					}
				}
			}
		})
	}
}

func TestOffsetFile(t *testing.T) {
	root := t.TempDir()
	if _, ok, err := ReadOffset(root); ok || err != nil {
		t.Fatalf("empty root: %v %v", ok, err)
	}
	if err := WriteOffset(root, Offset{Stream: "s", Consumer: "c", Offset: 42}); err != nil {
		t.Fatal(err)
	}
	o, ok, err := ReadOffset(root)
	if err != nil || !ok || o.Offset != 42 || o.Stream != "s" {
		t.Fatalf("read back %+v %v %v", o, ok, err)
	}
	if err := os.WriteFile(filepath.Join(root, OffsetFile), []byte("offset: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadOffset(root); err == nil {
		t.Fatal("a corrupt offset.yaml was accepted")
	}
}

// TestStorePipelined prepares every batch before committing any (the
// writer prepares one batch ahead): the result is the same.
func TestStorePipelined(t *testing.T) {
	bodies, cases := sequenceMessages()
	msgs := toMessages(bodies)
	root := t.TempDir()
	s, err := NewStore(root, annotation.DecodeOptions{}, SyncFiles)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var prepared []*Prepared
	for k := 0; k < len(msgs); k += 3 {
		p, err := s.Prepare(msgs[k:min(k+3, len(msgs))])
		if err != nil {
			t.Fatal(err)
		}
		prepared = append(prepared, p)
	}
	for _, p := range prepared {
		if _, err := s.Commit(p); err != nil {
			t.Fatal(err)
		}
	}
	checkSequences(t, root, cases)
}
