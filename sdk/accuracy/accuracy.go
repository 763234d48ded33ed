// Package accuracy computes COCO-style detection accuracy: mAP at IoU 0.50
// and mAP averaged over IoU 0.50:0.05:0.95, per class and overall, from
// ground-truth boxes and detections in the same pixel space. It is the one
// mAP implementation of the project: the trainer's accuracy gate feeds it the
// detections of every artifact (.pt, ONNX, RKNN, TensorRT) so they are
// compared by the same code. Any program may import it.
//
// The method is COCO's (pycocotools, area "all", no crowd regions):
// detections of a class are taken in descending score order across all
// images; each is matched to the unmatched ground-truth box of its image and
// class with the highest IoU at or above the threshold; precision is made
// monotone (the envelope from the right) and sampled at the 101 recall points
// 0, 0.01, ..., 1; AP is their mean. A class's mAP50-95 is the mean of its AP
// over the ten thresholds; the overall figures are means over the classes that
// have ground truth. Unlike COCO, the detections per image are not capped at
// 100 (the caller caps them, e.g. with the model's max_det).
package accuracy

import (
	"fmt"
	"math"
	"sort"

	"github.com/azaion/edge/sdk/yolo"
)

// Box is an axis-aligned box in pixels: X1,Y1 top-left, X2,Y2 bottom-right.
type Box struct {
	X1, Y1, X2, Y2 float64
}

// Object is a ground-truth box.
type Object struct {
	Class int
	Box   Box
}

// Detection is a predicted box with its score.
type Detection struct {
	Class int
	Score float64
	Box   Box
}

// Image is the ground truth and the detections of one image.
type Image struct {
	// ID names the image (for error messages).
	ID         string
	Truth      []Object
	Detections []Detection
}

// IoUThresholds are COCO's: 0.50, 0.55, ..., 0.95.
var IoUThresholds = [10]float64{0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95}

// ClassResult is the accuracy of one class.
type ClassResult struct {
	Class int `json:"class"`
	// Truth and Detections count the class's boxes.
	Truth      int `json:"truth"`
	Detections int `json:"detections"`
	// AP50 is the AP at IoU 0.50; AP5095 the mean AP over 0.50:0.95.
	AP50   float64 `json:"ap50"`
	AP5095 float64 `json:"ap50_95"`
	// Precision and Recall at IoU 0.50 at the score that maximizes F1.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
}

// Result is the accuracy over a set of images.
type Result struct {
	// MAP50 and MAP5095 are the means over the classes with ground truth.
	MAP50   float64 `json:"map50"`
	MAP5095 float64 `json:"map50_95"`
	// Images is the number of images evaluated.
	Images int `json:"images"`
	// Classes are the per-class results, by class id; classes with
	// detections but no ground truth are listed with AP 0 and do not count
	// in the means.
	Classes []ClassResult `json:"classes"`
}

// IoU returns the intersection over union of two boxes (0 when either is empty).
func IoU(a, b Box) float64 { return yolo.IoUXYXY(a.X1, a.Y1, a.X2, a.Y2, b.X1, b.Y1, b.X2, b.Y2) }

func (b Box) valid() bool {
	for _, v := range [4]float64{b.X1, b.Y1, b.X2, b.Y2} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return b.X2 >= b.X1 && b.Y2 >= b.Y1
}

// scored is one detection of a class, with where it came from.
type scored struct {
	score float64
	img   int
	box   Box
}

// Evaluate computes the accuracy of the detections against the ground truth.
// It returns an error for a box that is not finite or has negative size, or a
// score outside 0..1.
func Evaluate(images []Image) (*Result, error) {
	truth := map[int][][]Box{} // class -> per image -> boxes
	dets := map[int][]scored{}
	for i, im := range images {
		for j, o := range im.Truth {
			if !o.Box.valid() {
				return nil, fmt.Errorf("accuracy: image %s: truth %d: bad box %+v", im.ID, j, o.Box)
			}
			if truth[o.Class] == nil {
				truth[o.Class] = make([][]Box, len(images))
			}
			truth[o.Class][i] = append(truth[o.Class][i], o.Box)
		}
		for j, d := range im.Detections {
			if !d.Box.valid() || math.IsNaN(d.Score) || d.Score < 0 || d.Score > 1 {
				return nil, fmt.Errorf("accuracy: image %s: detection %d: bad box %+v or score %v", im.ID, j, d.Box, d.Score)
			}
			dets[d.Class] = append(dets[d.Class], scored{score: d.Score, img: i, box: d.Box})
		}
	}
	classes := map[int]bool{}
	for c := range truth {
		classes[c] = true
	}
	for c := range dets {
		classes[c] = true
	}
	ids := make([]int, 0, len(classes))
	for c := range classes {
		ids = append(ids, c)
	}
	sort.Ints(ids)

	res := &Result{Images: len(images)}
	var sum50, sum5095 float64
	n := 0
	for _, c := range ids {
		cr := evalClass(c, truth[c], dets[c])
		res.Classes = append(res.Classes, cr)
		if cr.Truth > 0 {
			sum50 += cr.AP50
			sum5095 += cr.AP5095
			n++
		}
	}
	if n > 0 {
		res.MAP50 = sum50 / float64(n)
		res.MAP5095 = sum5095 / float64(n)
	}
	return res, nil
}

// evalClass computes one class's AP at every threshold.
func evalClass(class int, truth [][]Box, dets []scored) ClassResult {
	nTruth := 0
	for _, t := range truth {
		nTruth += len(t)
	}
	cr := ClassResult{Class: class, Truth: nTruth, Detections: len(dets)}
	if nTruth == 0 {
		return cr
	}
	// Highest score first; ties keep input order (stable), as pycocotools' mergesort.
	sort.SliceStable(dets, func(a, b int) bool { return dets[a].score > dets[b].score })
	var sum float64
	for ti, thr := range IoUThresholds {
		tp := match(truth, dets, thr)
		ap, p, r := averagePrecision(tp, nTruth)
		sum += ap
		if ti == 0 {
			cr.AP50, cr.Precision, cr.Recall = ap, p, r
		}
	}
	cr.AP5095 = sum / float64(len(IoUThresholds))
	return cr
}

// match marks each detection (in score order) as a true positive when it
// matches an unmatched truth box of its image at IoU >= thr, choosing the
// truth box with the highest IoU.
func match(truth [][]Box, dets []scored, thr float64) []bool {
	used := make([][]bool, len(truth))
	for i, t := range truth {
		used[i] = make([]bool, len(t))
	}
	tp := make([]bool, len(dets))
	for k, d := range dets {
		if d.img >= len(truth) {
			continue
		}
		best, bestIoU := -1, thr
		for j, g := range truth[d.img] {
			if used[d.img][j] {
				continue
			}
			// pycocotools: a match needs iou >= threshold; keep the best.
			if iou := IoU(d.box, g); iou >= bestIoU && (best < 0 || iou > bestIoU) {
				best, bestIoU = j, iou
			}
		}
		if best >= 0 {
			used[d.img][best] = true
			tp[k] = true
		}
	}
	return tp
}

// averagePrecision returns the 101-point interpolated AP of a ranked list of
// true/false positives, and the precision and recall at the best F1.
func averagePrecision(tp []bool, nTruth int) (ap, bestP, bestR float64) {
	n := len(tp)
	if n == 0 {
		return 0, 0, 0
	}
	prec := make([]float64, n)
	rec := make([]float64, n)
	ctp, bestF1 := 0, -1.0
	for i, ok := range tp {
		if ok {
			ctp++
		}
		prec[i] = float64(ctp) / float64(i+1)
		rec[i] = float64(ctp) / float64(nTruth)
		if f1 := 2 * prec[i] * rec[i] / (prec[i] + rec[i] + 1e-16); f1 > bestF1 {
			bestF1, bestP, bestR = f1, prec[i], rec[i]
		}
	}
	// Precision envelope: the best precision at any recall at or beyond.
	for i := n - 2; i >= 0; i-- {
		prec[i] = math.Max(prec[i], prec[i+1])
	}
	var sum float64
	j := 0
	for k := 0; k <= 100; k++ {
		r := float64(k) * 0.01 // numpy.linspace(0, 1, 101), as pycocotools
		for j < n && rec[j] < r {
			j++
		}
		if j == n {
			break
		}
		sum += prec[j]
	}
	return sum / 101, bestP, bestR
}
