package convert

import (
	"encoding/binary"
	"math"
)

// DType names a tensor element type as the sidecar spells it (SPEC §5).
type DType string

const (
	Float64    DType = "float64"
	Float32    DType = "float32"
	Float16    DType = "float16"
	BFloat16   DType = "bfloat16"
	Float8E4M3 DType = "float8_e4m3fn"
	Float8E5M2 DType = "float8_e5m2"
	Int64      DType = "int64"
	Int32      DType = "int32"
	Int16      DType = "int16"
	Int8       DType = "int8"
	Uint64     DType = "uint64"
	Uint32     DType = "uint32"
	Uint16     DType = "uint16"
	Uint8      DType = "uint8"
	Bool       DType = "bool"
)

var dtypeSizes = map[DType]int{
	Float64: 8, Float32: 4, Float16: 2, BFloat16: 2, Float8E4M3: 1, Float8E5M2: 1,
	Int64: 8, Int32: 4, Int16: 2, Int8: 1, Uint64: 8, Uint32: 4, Uint16: 2, Uint8: 1, Bool: 1,
}

// Native reports whether d is one of the element types values are streamed in.
// Any other DType (a quantized type such as "q4_0") streams as float32.
func (d DType) Native() bool { _, ok := dtypeSizes[d]; return ok }

// ValueType is the type of the values a reader streams for a tensor of dtype d:
// d itself, or float32 for quantized types, which are written dequantized.
func (d DType) ValueType() DType {
	if d.Native() {
		return d
	}
	return Float32
}

// Size is the byte size of one streamed value (of d.ValueType()).
func (d DType) Size() int { return dtypeSizes[d.ValueType()] }

// IsFloat reports whether values of type d are floating point.
func (d DType) IsFloat() bool {
	switch d.ValueType() {
	case Float64, Float32, Float16, BFloat16, Float8E4M3, Float8E5M2:
		return true
	}
	return false
}

// Float16To32 widens IEEE 754 binary16 bits exactly.
func Float16To32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: normalise
	e := uint32(113)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// Float32To16 narrows a float32 that holds an exact binary16 value (as parsed
// back from text written by Float16To32) to its bits. NaN becomes the canonical quiet NaN.
func Float32To16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff:
		if man != 0 {
			return 0x7e00
		}
		return sign | 0x7c00
	case exp == 0 && man == 0:
		return sign
	case exp-112 >= 1: // normal half
		return sign | uint16(exp-112)<<10 | uint16(man>>13)
	}
	// subnormal half: value = man' * 2^-24
	return sign | uint16((man|0x800000)>>uint32(126-exp))
}

// Float8E4M3To32 widens OCP FP8 E4M3FN (bias 7, no Inf, S.1111.111 is NaN) exactly.
func Float8E4M3To32(v uint8) float32 {
	sign := uint32(v>>7) << 31
	exp := uint32(v>>3) & 0xf
	man := uint32(v) & 0x7
	if exp == 0xf && man == 0x7 {
		return math.Float32frombits(sign | 0x7fc00000)
	}
	if exp == 0 {
		f := float32(man) / 512 // man * 2^-9
		return math.Float32frombits(sign | math.Float32bits(f))
	}
	return math.Float32frombits(sign | (exp+120)<<23 | man<<20)
}

// Float8E5M2To32 widens FP8 E5M2 (IEEE-like, bias 15) exactly.
func Float8E5M2To32(v uint8) float32 { return Float16To32(uint16(v) << 8) }

// BFloat16To32 widens bfloat16 bits exactly.
func BFloat16To32(v uint16) float32 { return math.Float32frombits(uint32(v) << 16) }

// canonicalNaN32 is float32's canonical quiet NaN.
var canonicalNaN32 = math.Float32frombits(0x7fc00000)

// CanonicalNaN rewrites, in place, every NaN among the little-endian values of
// type d in b to its dtype's canonical quiet NaN, so that a checksum covers
// only what CSV text can carry (SPEC §5).
func CanonicalNaN(d DType, b []byte) {
	switch d {
	case Float64:
		for i := 0; i+8 <= len(b); i += 8 {
			if v := binary.LittleEndian.Uint64(b[i:]); v&0x7ff0000000000000 == 0x7ff0000000000000 && v&0xfffffffffffff != 0 && v != 0x7ff8000000000000 {
				binary.LittleEndian.PutUint64(b[i:], 0x7ff8000000000000)
			}
		}
	case Float32:
		for i := 0; i+4 <= len(b); i += 4 {
			if v := binary.LittleEndian.Uint32(b[i:]); v&0x7f800000 == 0x7f800000 && v&0x7fffff != 0 && v != 0x7fc00000 {
				binary.LittleEndian.PutUint32(b[i:], 0x7fc00000)
			}
		}
	case Float16:
		for i := 0; i+2 <= len(b); i += 2 {
			if v := binary.LittleEndian.Uint16(b[i:]); v&0x7c00 == 0x7c00 && v&0x3ff != 0 && v != 0x7e00 {
				binary.LittleEndian.PutUint16(b[i:], 0x7e00)
			}
		}
	case BFloat16:
		for i := 0; i+2 <= len(b); i += 2 {
			if v := binary.LittleEndian.Uint16(b[i:]); v&0x7f80 == 0x7f80 && v&0x7f != 0 && v != 0x7fc0 {
				binary.LittleEndian.PutUint16(b[i:], 0x7fc0)
			}
		}
	case Float8E4M3:
		for i, v := range b {
			if v&0x7f == 0x7f {
				b[i] = 0x7f
			}
		}
	case Float8E5M2:
		for i, v := range b {
			if v&0x7c == 0x7c && v&0x3 != 0 {
				b[i] = 0x7e
			}
		}
	}
}
