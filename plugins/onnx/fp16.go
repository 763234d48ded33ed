package onnx

import (
	"math"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// Float16 support: a model exported with half=True takes and returns IEEE
// 754 half-precision tensors. The plugin keeps preprocessing and decoding in
// float32 and converts at the session's boundary.

// toHalf converts a float32 to the nearest IEEE 754 half (ties to even);
// values beyond the half range become infinities, NaN stays NaN.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 0x1f: // overflow (and infinity)
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := uint16(mant >> shift)
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || rem == mid && half&1 == 1 {
			half++
		}
		return sign | half
	}
	half := sign | uint16(exp)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && half&1 == 1 {
		half++ // may carry into the exponent, which is right
	}
	return half
}

// fromHalf converts an IEEE 754 half to float32 exactly.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		return float32(mant) / (1 << 24) * sign1(sign)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

func sign1(sign uint32) float32 {
	if sign != 0 {
		return -1
	}
	return 1
}

// halfTensor is a float16 tensor over a []uint16 the plugin fills or reads.
type halfTensor struct {
	t    *ort.CustomDataTensor
	data []uint16
}

func newHalfTensor(shape ort.Shape, data []uint16) (*halfTensor, error) {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 2*len(data))
	t, err := ort.NewCustomDataTensor(shape, b, ort.TensorElementDataTypeFloat16)
	if err != nil {
		return nil, err
	}
	return &halfTensor{t: t, data: data}, nil
}

func (h *halfTensor) destroy() {
	if h != nil {
		h.t.Destroy()
	}
}

// halvesFrom writes src as halves into dst.
func halvesFrom(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = toHalf(v)
	}
}

// floatsFrom writes the halves of src as float32 into dst.
func floatsFrom(dst []float32, src []uint16) {
	for i, v := range src {
		dst[i] = fromHalf(v)
	}
}
