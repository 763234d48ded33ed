package shmem

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Align is the alignment of every slot (a cache line).
const Align = 64

// DefaultHold is how long a slot stays taken after a call that handed it to
// a plugin failed or was cancelled (Pool.Hold): the plugin may still be
// decoding it, and no decode takes nearly this long.
const DefaultHold = time.Minute

// Pool hands out slots of a read-write Region: first fit over a list of
// free spans ordered by offset, neighbours merged on free, any sizes, frees
// in any order. It is safe for concurrent use.
type Pool struct {
	r *Region

	mu      sync.Mutex
	free    []span            // ordered by off, never adjacent
	used    map[int]int       // slot offset -> its size (aligned)
	holds   map[int]time.Time // slot offset -> not reusable before
	pending map[int]time.Time // freed slots waiting for their hold
	inUse   int               // bytes in slots, pending ones included
	closed  bool
	now     func() time.Time

	// Counters for metrics: images handed to a plugin by reference and by
	// bytes, and bodies that did not get a slot (the pool was full).
	Shared, Copied, Full atomic.Uint64
}

type span struct{ off, size int }

// NewPool returns an allocator over r (mapped read-write: Create).
func NewPool(r *Region) *Pool {
	return &Pool{r: r, free: []span{{0, r.Size() &^ (Align - 1)}}, used: map[int]int{},
		holds: map[int]time.Time{}, pending: map[int]time.Time{}, now: time.Now}
}

// Region is the pool's region.
func (p *Pool) Region() *Region { return p.r }

// Alloc returns a slot of n bytes (len n), or nil when no free span is
// large enough or the pool is closed: the caller then uses the heap.
func (p *Pool) Alloc(n int) []byte {
	if n <= 0 {
		return nil
	}
	if n > p.r.Size() {
		p.Full.Add(1)
		return nil
	}
	size := (n + Align - 1) &^ (Align - 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.sweepLocked()
	for i, s := range p.free {
		if s.size < size {
			continue
		}
		if s.size == size {
			p.free = append(p.free[:i], p.free[i+1:]...)
		} else {
			p.free[i] = span{s.off + size, s.size - size}
		}
		p.used[s.off] = size
		p.inUse += size
		return p.r.mem[s.off : s.off+n : s.off+n]
	}
	p.Full.Add(1)
	return nil
}

// Hold keeps the slot holding b from being reused for d after it is freed:
// a call that handed it to a plugin failed, and the plugin may still read
// it. b may be any part of a slot; bytes outside the pool are ignored.
func (p *Pool) Hold(b []byte, d time.Duration) {
	off, ok := p.r.Offset(b)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if start, ok := p.slotLocked(off); ok {
		until := p.now().Add(d)
		if until.After(p.holds[start]) {
			p.holds[start] = until
		}
	}
}

// Free gives back the slot Alloc returned as b (or any part of it); it is
// reused at once unless Hold holds it. Bytes outside the pool are ignored,
// so callers free whatever buffer they got.
func (p *Pool) Free(b []byte) {
	off, ok := p.r.Offset(b)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	start, ok := p.slotLocked(off)
	if !ok {
		return
	}
	if until, held := p.holds[start]; held {
		delete(p.holds, start)
		if p.now().Before(until) {
			p.pending[start] = until
			return
		}
	}
	p.releaseLocked(start)
	p.unmapIfDoneLocked()
}

// slotLocked finds the slot that contains off.
func (p *Pool) slotLocked(off int) (int, bool) {
	if _, ok := p.used[off]; ok {
		return off, true
	}
	for start, size := range p.used { // a view into a slot: rare
		if off >= start && off < start+size {
			return start, true
		}
	}
	return 0, false
}

// sweepLocked releases the pending slots whose hold has passed.
func (p *Pool) sweepLocked() {
	if len(p.pending) == 0 {
		return
	}
	now := p.now()
	for off, until := range p.pending {
		if !now.Before(until) {
			delete(p.pending, off)
			p.releaseLocked(off)
		}
	}
}

// releaseLocked returns the slot at off to the free list, merging it with
// its neighbours.
func (p *Pool) releaseLocked(off int) {
	size := p.used[off]
	delete(p.used, off)
	p.inUse -= size
	i := sort.Search(len(p.free), func(i int) bool { return p.free[i].off > off })
	s := span{off, size}
	if i > 0 && p.free[i-1].off+p.free[i-1].size == off { // merge with the one before
		p.free[i-1].size += size
		s = p.free[i-1]
		i--
		p.free = append(p.free[:i], p.free[i+1:]...)
	}
	if i < len(p.free) && s.off+s.size == p.free[i].off { // and the one after
		s.size += p.free[i].size
		p.free = append(p.free[:i], p.free[i+1:]...)
	}
	p.free = append(p.free, span{})
	copy(p.free[i+1:], p.free[i:])
	p.free[i] = s
}

// InUse is the number of bytes in slots (held ones included).
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	return p.inUse
}

// Close stops handing out slots and unmaps the region once every slot is
// free (slots still held keep it mapped: a plugin may read it).
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.unmapIfDoneLocked()
}

func (p *Pool) unmapIfDoneLocked() {
	if p.closed && len(p.used) == 0 {
		p.r.Close()
	}
}
