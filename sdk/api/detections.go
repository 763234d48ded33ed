package api

import (
	"math"
	"strconv"

	"github.com/azaion/edge/sdk/classes"
	"github.com/azaion/edge/sdk/yolo"
)

// FromDetections turns a backend's detections into the API's: each gets
// its label from names (and, for the Azaion class system, its weather
// mode); scores are rounded to 4 decimals, box coordinates to 2.
func FromDetections(ds []yolo.Detection, names []string) []Detection {
	azaion := isAzaionClasses(names)
	out := make([]Detection, len(ds))
	for i, d := range ds {
		ad := Detection{ClassID: d.ClassID, Score: roundTo(float64(d.Score), 1e4),
			Box: Box{X1: roundTo(float64(d.Box.X1), 100), Y1: roundTo(float64(d.Box.Y1), 100),
				X2: roundTo(float64(d.Box.X2), 100), Y2: roundTo(float64(d.Box.Y2), 100)}}
		if d.ClassID >= 0 && d.ClassID < len(names) {
			ad.Label = names[d.ClassID]
		} else {
			ad.Label = strconv.Itoa(d.ClassID)
		}
		if azaion {
			if base, w, ok := classes.Split(d.ClassID); ok {
				ad.Label, ad.Weather = classes.Base[base], w.String()
			}
		}
		out[i] = ad
	}
	return out
}

func isAzaionClasses(names []string) bool {
	return len(names) >= classes.NumBase && names[0] == classes.Name(0) && names[1] == classes.Name(1)
}

func roundTo(f, scale float64) float64 { return math.Round(f*scale) / scale }
