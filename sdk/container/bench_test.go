package container

import (
	"crypto/rand"
	"testing"

	"github.com/azaion/edge/sdk/model"
)

// BenchmarkOpen measures verify + decrypt of a 64 MiB model held in memory.
func BenchmarkOpen(b *testing.B) {
	pt := make([]byte, 64<<20)
	rand.Read(pt)
	s, err := Seal(pt, model.Descriptor{Name: "b"}, SealOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := ParseSmall(s.Small)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		o := sp.NewOpener()
		o.Write(s.Big)
		if _, err := o.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}
