// Package yolo decodes YOLO detector outputs into detections: both output
// layouts (yolo-raw [B,4+nc,A] and yolo-nms [B,N,6]), class-aware
// non-maximum suppression, and the letterbox geometry that maps boxes from
// network-input pixels back to original-image pixels. It is pure Go and may
// be imported by the daemon, plugins and clients.
package yolo

// Box is an axis-aligned box in pixels: top-left (X1, Y1), bottom-right (X2, Y2).
type Box struct {
	X1 float32 `json:"x1"`
	Y1 float32 `json:"y1"`
	X2 float32 `json:"x2"`
	Y2 float32 `json:"y2"`
}

// Detection is one detected object.
type Detection struct {
	// ClassID is the model's class index.
	ClassID int `json:"class_id"`
	// Score is the class confidence in [0, 1].
	Score float32 `json:"score"`
	// Box is the object's box (input pixels before Unletterbox, original pixels after).
	Box Box `json:"box"`
}

// Params filter detections.
type Params struct {
	// Conf is the minimum score kept (default 0.25).
	Conf float32
	// IoU is the NMS overlap threshold (default 0.45).
	IoU float32
	// MaxDet caps the detections per image (default 300).
	MaxDet int
	// Classes keeps only these class ids when not empty.
	Classes []int
}

// Defaults for Params.
const (
	DefaultConf   = 0.25
	DefaultIoU    = 0.45
	DefaultMaxDet = 300
)

// WithDefaults returns p with zero fields set to the defaults.
func (p Params) WithDefaults() Params {
	if p.Conf == 0 {
		p.Conf = DefaultConf
	}
	if p.IoU == 0 {
		p.IoU = DefaultIoU
	}
	if p.MaxDet == 0 {
		p.MaxDet = DefaultMaxDet
	}
	return p
}
