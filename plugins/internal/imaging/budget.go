package imaging

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/sdk/imageheader"
)

// ErrBudget: the decoded bytes in flight are at the plugin's budget and did
// not fall within the wait; the request should be retried later.
var ErrBudget = errors.New("decode memory budget exhausted")

// Budget bounds the bytes of decoded pixels a plugin holds at once, so that
// many requests for huge images (a 300 KB PNG can decode to 100 megapixels,
// 300 MB) cannot take the process past the machine's memory: each decode
// first acquires its cost (DecodedBytes) and releases it once the image is
// letterboxed. A decode larger than the whole budget runs alone.
type Budget struct {
	total int64
	wait  time.Duration

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed (and replaced) whenever bytes are released
}

// NewBudget returns a budget of total bytes; Acquire waits up to wait for
// room before it gives up.
func NewBudget(total int64, wait time.Duration) *Budget {
	return &Budget{total: total, wait: wait, freed: make(chan struct{})}
}

// Total returns the budget in bytes.
func (b *Budget) Total() int64 { return b.total }

// Acquire takes n bytes of the budget (n is capped at the total) and
// returns the func that gives them back; it waits up to the budget's wait
// for room and then fails with ErrBudget.
func (b *Budget) Acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(n, b.total)
	t := time.NewTimer(b.wait)
	defer t.Stop()
	for {
		b.mu.Lock()
		if b.used+n <= b.total {
			b.used += n
			b.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { b.release(n) }) }, nil
		}
		freed := b.freed
		used := b.used
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, fmt.Errorf("%w: %d MiB of decoded images in flight, %d MiB more would pass the %d MiB budget within %s",
				ErrBudget, used>>20, n>>20, b.total>>20, b.wait)
		}
	}
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// InUse returns the bytes acquired now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// DecodedBytes returns what decoding an encoded image for a w x h letterbox
// costs in pixel memory: the BGR image at the scale Decode chooses, and for
// formats OpenCV decodes, room for its intermediate (an alpha channel). An
// image whose header does not read costs nothing (Decode refuses it).
func DecodedBytes(b []byte, w, h int) int64 {
	hdr, err := imageheader.Read(b)
	if err != nil {
		return 0
	}
	if hdr.Format == imageheader.JPEG && hdr.Components != 4 {
		num := ChooseScale(hdr, w, h)
		return int64(scaled(hdr.Width, num)) * int64(scaled(hdr.Height, num)) * 3
	}
	return int64(hdr.Width) * int64(hdr.Height) * 4
}

// DefaultBudget is the decode budget for this machine: an eighth of its
// memory, between 512 MiB and 4 GiB (1 GiB on an 8 GB board).
func DefaultBudget() int64 {
	const lo, hi = 512 << 20, 4 << 30
	total := memTotal()
	if total <= 0 {
		return lo
	}
	return min(max(total/8, lo), hi)
}

// memTotal reads MemTotal from /proc/meminfo (0 when unknown).
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
