package imaging

import (
	"testing"

	"gocv.io/x/gocv"

	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
)

func readTestImage(t testing.TB, name string) []byte {
	t.Helper()
	if name != "bus.jpg" {
		t.Fatalf("no shared image %s", name)
	}
	return imagingtest.Bus(t)
}

func encode(t testing.TB, m gocv.Mat, params ...int) []byte {
	t.Helper()
	return imagingtest.Encode(t, m, params...)
}

func bus4K(t testing.TB) []byte { return imagingtest.Bus4K(t) }
