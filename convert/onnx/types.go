// ONNX element types (TensorProto.DataType, onnx.proto up to IR version 11):
// which dtype each exports as, how many bits it stores per element, which
// typed repeated field holds it when raw_data is not used, and how types that
// have no native dtype here (FNUZ float8, E8M0, 4- and 2-bit types) widen to
// float32, exactly, as quantized types do.

package onnx

import (
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

// TensorProto data field numbers.
const (
	fieldFloat  protowire.Number = 4
	fieldInt32  protowire.Number = 5
	fieldString protowire.Number = 6
	fieldInt64  protowire.Number = 7
	fieldDouble protowire.Number = 10
	fieldUint64 protowire.Number = 11
)

type elemType struct {
	name  string        // ONNX's name, for messages
	dtype convert.DType // the exported dtype; "" when not exported
	bits  int           // storage bits per element in raw_data
	field protowire.Number
	tab8  *[256]float32 // 8-bit types streamed as float32
	tabN  *[16]float32  // 4- and 2-bit types (streamed as float32)
	skip  string        // why it is not exported
}

// unit is the storage bytes one element of the typed field carries: one
// value for 8-bit and wider types, a packed byte for 4- and 2-bit types.
func (t *elemType) unit() int { return max(t.bits/8, 1) }

// storageBytes is the raw_data length of numel elements.
func (t *elemType) storageBytes(numel int64) int64 {
	if t.bits >= 8 {
		return numel * int64(t.bits/8)
	}
	per := int64(8 / t.bits)
	return (numel + per - 1) / per
}

var (
	tabE4M3FNUZ, tabE5M2FNUZ, tabE8M0 [256]float32
	tabInt4, tabUint4, tabFP4         [16]float32
	tabInt2, tabUint2                 [16]float32
)

var nan32 = math.Float32frombits(0x7fc00000)

func init() {
	for i := range 256 {
		v := uint8(i)
		sign := float32(1)
		if v&0x80 != 0 {
			sign = -1
		}
		// E4M3FNUZ: bias 8, no Inf, no -0: 0x80 is the only NaN.
		e, m := int(v>>3)&0xf, float64(v&7)
		if e == 0 {
			tabE4M3FNUZ[i] = sign * float32(math.Ldexp(m, -10))
		} else {
			tabE4M3FNUZ[i] = sign * float32(math.Ldexp(1+m/8, e-8))
		}
		// E5M2FNUZ: bias 16, no Inf, no -0: 0x80 is the only NaN.
		e, m = int(v>>2)&0x1f, float64(v&3)
		if e == 0 {
			tabE5M2FNUZ[i] = sign * float32(math.Ldexp(m, -17))
		} else {
			tabE5M2FNUZ[i] = sign * float32(math.Ldexp(1+m/4, e-16))
		}
		// E8M0 (OCP MX scale): 2^(v-127), 0xFF is NaN.
		tabE8M0[i] = float32(math.Ldexp(1, i-127))
	}
	tabE4M3FNUZ[0x80], tabE5M2FNUZ[0x80], tabE8M0[0xff] = nan32, nan32, nan32
	for i := range 16 {
		tabUint4[i] = float32(i)
		tabInt4[i] = float32(int8(uint8(i)<<4) >> 4)
		// FLOAT4E2M1: 1 sign, 2 exponent (bias 1), 1 mantissa bits; no Inf or NaN.
		e, m := (i>>1)&3, float64(i&1)
		f := math.Ldexp(m, -1)
		if e != 0 {
			f = math.Ldexp(1+m/2, e-1)
		}
		if i&8 != 0 {
			f = -f
		}
		tabFP4[i] = float32(f)
	}
	for i := range 4 {
		tabUint2[i] = float32(i)
		tabInt2[i] = float32(int8(uint8(i)<<6) >> 6)
	}
}

// elemTypes maps TensorProto.DataType codes.
var elemTypes = map[int64]*elemType{
	1:  {name: "FLOAT", dtype: convert.Float32, bits: 32, field: fieldFloat},
	2:  {name: "UINT8", dtype: convert.Uint8, bits: 8, field: fieldInt32},
	3:  {name: "INT8", dtype: convert.Int8, bits: 8, field: fieldInt32},
	4:  {name: "UINT16", dtype: convert.Uint16, bits: 16, field: fieldInt32},
	5:  {name: "INT16", dtype: convert.Int16, bits: 16, field: fieldInt32},
	6:  {name: "INT32", dtype: convert.Int32, bits: 32, field: fieldInt32},
	7:  {name: "INT64", dtype: convert.Int64, bits: 64, field: fieldInt64},
	8:  {name: "STRING", skip: "string tensor is not exported"},
	9:  {name: "BOOL", dtype: convert.Bool, bits: 8, field: fieldInt32},
	10: {name: "FLOAT16", dtype: convert.Float16, bits: 16, field: fieldInt32},
	11: {name: "DOUBLE", dtype: convert.Float64, bits: 64, field: fieldDouble},
	12: {name: "UINT32", dtype: convert.Uint32, bits: 32, field: fieldUint64},
	13: {name: "UINT64", dtype: convert.Uint64, bits: 64, field: fieldUint64},
	14: {name: "COMPLEX64", skip: "complex64 is not exported"},
	15: {name: "COMPLEX128", skip: "complex128 is not exported"},
	16: {name: "BFLOAT16", dtype: convert.BFloat16, bits: 16, field: fieldInt32},
	17: {name: "FLOAT8E4M3FN", dtype: convert.Float8E4M3, bits: 8, field: fieldInt32},
	18: {name: "FLOAT8E4M3FNUZ", dtype: "float8_e4m3fnuz", bits: 8, field: fieldInt32, tab8: &tabE4M3FNUZ},
	19: {name: "FLOAT8E5M2", dtype: convert.Float8E5M2, bits: 8, field: fieldInt32},
	20: {name: "FLOAT8E5M2FNUZ", dtype: "float8_e5m2fnuz", bits: 8, field: fieldInt32, tab8: &tabE5M2FNUZ},
	21: {name: "UINT4", dtype: "uint4", bits: 4, field: fieldInt32, tabN: &tabUint4},
	22: {name: "INT4", dtype: "int4", bits: 4, field: fieldInt32, tabN: &tabInt4},
	23: {name: "FLOAT4E2M1", dtype: "float4_e2m1", bits: 4, field: fieldInt32, tabN: &tabFP4},
	24: {name: "FLOAT8E8M0", dtype: "float8_e8m0", bits: 8, field: fieldInt32, tab8: &tabE8M0},
	25: {name: "UINT2", dtype: "uint2", bits: 2, field: fieldInt32, tabN: &tabUint2},
	26: {name: "INT2", dtype: "int2", bits: 2, field: fieldInt32, tabN: &tabInt2},
}

// typeOf finds a data type, or a stand-in that says why it is skipped.
func typeOf(code int64) *elemType {
	if t, ok := elemTypes[code]; ok {
		return t
	}
	if code == 0 {
		return &elemType{name: "UNDEFINED", skip: "tensor has no data type"}
	}
	return &elemType{name: "unknown", skip: "unknown ONNX data type " + strconv.FormatInt(code, 10)}
}

// Element types of attribute lists and scalars.
var (
	typeFloat = elemTypes[1]
	typeInt64 = elemTypes[7]
)
