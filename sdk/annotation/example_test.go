package annotation_test

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/azaion/edge/sdk/annotation"
)

// An edited event (no image) encodes to 71 bytes: 98 (array of 8), 01
// (version), ac + "frame_000042" (name), 02 (edited), cf + uint64 (created,
// Unix ms), a4 + "ann1" (author), a0 (image format ""), c0 (nil image),
// 91 (one box) 95 (five numbers) 02 (class) and four cb + float64.
func ExampleEncode() {
	b, err := annotation.Encode(&annotation.Annotation{
		Name: "frame_000042", Op: annotation.Edited, Created: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Author: "ann1", Labels: []annotation.Box{{Class: 2, CX: 0.5, CY: 0.25, W: 0.125, H: 0.25}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b))
	fmt.Println(hex.EncodeToString(b))
	a, err := annotation.Decode(b, annotation.DecodeOptions{})
	fmt.Println(a.Name, a.Op, a.Labels[0], err)
	// Output:
	// 71
	// 9801ac6672616d655f30303030343202cf000001a22206ca00a4616e6e31a0c0919502cb3fe0000000000000cb3fd0000000000000cb3fc0000000000000cb3fd0000000000000
	// frame_000042 edited {2 0.5 0.25 0.125 0.25} <nil>
}
