//go:build !amd64

package yolo

// maxRow sets best[i] to max(best[i], row[i]) (NaN when either is NaN).
func maxRow(best, row []float32) { maxRowGo(best, row) }
