#include "textflag.h"

// func maxRowAVX2(best, row *float32, n int)
//
// best[i] = max(best[i], row[i]) for i < n (a multiple of 32), NaN when
// either is NaN (as Go's max). VMAXPS answers its second source when either
// operand is NaN, best here; a NaN in row is put back by or-ing in the
// all-ones mask of an unordered compare (all ones is a NaN).
TEXT ·maxRowAVX2(SB), NOSPLIT, $0-24
	MOVQ best+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ CX, $0
	JLE  done

loop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS 32(SI)(AX*4), Y1
	VMOVUPS 64(SI)(AX*4), Y2
	VMOVUPS 96(SI)(AX*4), Y3
	VMAXPS  (DI)(AX*4), Y0, Y4
	VMAXPS  32(DI)(AX*4), Y1, Y5
	VMAXPS  64(DI)(AX*4), Y2, Y6
	VMAXPS  96(DI)(AX*4), Y3, Y7
	VCMPPS  $3, Y0, Y0, Y0
	VCMPPS  $3, Y1, Y1, Y1
	VCMPPS  $3, Y2, Y2, Y2
	VCMPPS  $3, Y3, Y3, Y3
	VORPS   Y0, Y4, Y4
	VORPS   Y1, Y5, Y5
	VORPS   Y2, Y6, Y6
	VORPS   Y3, Y7, Y7
	VMOVUPS Y4, (DI)(AX*4)
	VMOVUPS Y5, 32(DI)(AX*4)
	VMOVUPS Y6, 64(DI)(AX*4)
	VMOVUPS Y7, 96(DI)(AX*4)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     loop

done:
	VZEROUPPER
	RET
