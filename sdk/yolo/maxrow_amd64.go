package yolo

import "golang.org/x/sys/cpu"

//go:noescape
func maxRowAVX2(best, row *float32, n int)

// maxRow sets best[i] to max(best[i], row[i]) (NaN when either is NaN),
// 32 values at a time with AVX2 where the CPU has it.
func maxRow(best, row []float32) {
	row = row[:len(best)]
	n := 0
	if cpu.X86.HasAVX2 {
		n = len(best) &^ 31
		if n > 0 {
			maxRowAVX2(&best[0], &row[0], n)
		}
	}
	maxRowGo(best[n:], row[n:])
}
