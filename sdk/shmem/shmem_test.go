package shmem

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newPool(t *testing.T, size int) *Pool {
	t.Helper()
	r, err := Create(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return NewPool(r)
}

// TestPoolRandom allocates and frees slots of random sizes in random order:
// live slots never overlap, each keeps what was written to it, and once all
// are freed the free list is one span again.
func TestPoolRandom(t *testing.T) {
	const size = 1 << 20
	p := newPool(t, size)
	rng := rand.New(rand.NewPCG(1, 2))
	type slot struct {
		b    []byte
		fill byte
	}
	var live []slot
	fails := 0
	for i := range 20000 {
		if len(live) > 0 && rng.IntN(2) == 0 {
			j := rng.IntN(len(live))
			s := live[j]
			if !bytes.Equal(s.b, bytes.Repeat([]byte{s.fill}, len(s.b))) {
				t.Fatalf("step %d: a slot of %d bytes was overwritten", i, len(s.b))
			}
			p.Free(s.b)
			live = append(live[:j], live[j+1:]...)
			continue
		}
		n := 1 + rng.IntN(64<<10)
		b := p.Alloc(n)
		if b == nil {
			fails++
			continue
		}
		if len(b) != n || cap(b) != n {
			t.Fatalf("Alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		off, ok := p.Region().Offset(b)
		if !ok || off%Align != 0 {
			t.Fatalf("Alloc(%d): offset %d, in region %v", n, off, ok)
		}
		fill := byte(i)
		for k := range b {
			b[k] = fill
		}
		live = append(live, slot{b, fill})
	}
	if fails == 0 {
		t.Fatal("the pool never filled up: the test does not exercise a full pool")
	}
	for _, s := range live {
		if !bytes.Equal(s.b, bytes.Repeat([]byte{s.fill}, len(s.b))) {
			t.Fatal("a slot was overwritten")
		}
		p.Free(s.b)
	}
	if p.InUse() != 0 || len(p.free) != 1 || p.free[0] != (span{0, size}) {
		t.Fatalf("after freeing everything: in use %d, free list %v", p.InUse(), p.free)
	}
	if b := p.Alloc(size); b == nil {
		t.Fatal("the whole region cannot be allocated after everything was freed")
	}
}

// TestPoolHold: a held slot is not reused when freed, only after its hold.
func TestPoolHold(t *testing.T) {
	p := newPool(t, 4096)
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	a := p.Alloc(4096)
	if a == nil || p.Alloc(1) != nil {
		t.Fatal("want one slot filling the region")
	}
	p.Hold(a[10:20], time.Minute) // any part of the slot holds it
	p.Free(a)
	if b := p.Alloc(64); b != nil {
		t.Fatal("a held slot was reused before its hold ended")
	}
	now = now.Add(59 * time.Second)
	if b := p.Alloc(64); b != nil {
		t.Fatal("a held slot was reused before its hold ended")
	}
	now = now.Add(2 * time.Second)
	if b := p.Alloc(4096); b == nil {
		t.Fatal("the slot is still taken after its hold ended")
	}
	if p.Full.Load() != 3 {
		t.Fatalf("Full = %d, want 3", p.Full.Load())
	}
	p.Free(make([]byte, 10)) // heap bytes: ignored
}

// TestRegionShared: a second read-only mapping of the descriptor (what a
// plugin makes) sees the daemon's writes at the same offsets, has the same
// ID, and cannot be made writable; references outside it are refused.
func TestRegionShared(t *testing.T) {
	p := newPool(t, 1<<16)
	w := p.Region()
	fd, err := unix.Dup(int(w.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := Open(os.NewFile(uintptr(fd), "dup"), w.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.ID() != w.ID() || ro.ID() == "" {
		t.Fatalf("IDs differ: %q and %q", ro.ID(), w.ID())
	}
	b := p.Alloc(100)
	copy(b, "hello, plugin")
	off, _ := w.Offset(b)
	got, err := ro.Bytes(uint64(off), 13)
	if err != nil || string(got) != "hello, plugin" {
		t.Fatalf("read-only view: %q, %v", got, err)
	}
	if _, err := ro.Bytes(uint64(w.Size()-10), 11); err == nil {
		t.Fatal("a reference past the end was accepted")
	}
	if _, err := ro.Bytes(1<<63, 1<<63); err == nil {
		t.Fatal("an overflowing reference was accepted")
	}
	if _, ok := w.Offset(make([]byte, 10)); ok {
		t.Fatal("heap bytes were taken for region bytes")
	}
	if m, err := unix.Mmap(int(ro.File().Fd()), 0, w.Size(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(m)
		t.Fatal("the sealed region could be mapped writable")
	}
	if err := unix.Ftruncate(int(ro.File().Fd()), 10); err == nil {
		t.Fatal("the sealed region could be shrunk")
	}
	if _, err := Open(os.NewFile(uintptr(must(unix.Dup(int(w.File().Fd())))), "dup"), w.Size()+1); err == nil {
		t.Fatal("Open accepted a wrong size")
	}
}

func must(fd int, err error) int {
	if err != nil {
		panic(err)
	}
	return fd
}

// TestFromEnv: no environment is ErrNoRegion; a bad one is an error.
func TestFromEnv(t *testing.T) {
	t.Setenv(EnvFD, "")
	if _, err := FromEnv(); err != ErrNoRegion {
		t.Fatalf("no env: %v", err)
	}
	t.Setenv(EnvFD, "x")
	t.Setenv(EnvSize, "10")
	if _, err := FromEnv(); err == nil || err == ErrNoRegion {
		t.Fatalf("bad fd: %v", err)
	}
}
