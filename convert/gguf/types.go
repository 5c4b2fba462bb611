package gguf

// The ggml tensor types a GGUF file can name, with their block geometry.
// Ids, block sizes and bytes per block follow ggml's enum ggml_type
// (ggml/include/ggml.h, docs/gguf.md) and gguf-py's GGML_QUANT_SIZES
// (gguf-py/gguf/constants.py). Q8_1 is the one exception: gguf-py still lists
// the old 40-byte block (two float32), ggml-common.h has used two float16
// (36 bytes) since GGUF exists, and ggml is what writes such files.

import (
	"fmt"
	"strings"

	"ckpt2csv/convert"
)

// ggmlType is one ggml tensor type.
type ggmlType struct {
	name string // as ggml spells it: "Q4_K"
	blck int64  // values per block (1 for plain types)
	size int64  // bytes per block; 0 when the geometry is unknown to us
	// native is the dtype a plain type streams as ("" for block types).
	native convert.DType
	// dequant turns one block of size bytes into blck float32 values,
	// following ggml's dequantize_row_* reference; nil when we have none.
	dequant func(blk []byte, out []float32)
}

// dtype is the sidecar dtype: the native dtype, or the ggml name in lower case.
func (t *ggmlType) dtype() convert.DType {
	if t.native != "" {
		return t.native
	}
	return convert.DType(strings.ToLower(t.name))
}

// exported reports whether tensors of this type can be streamed.
func (t *ggmlType) exported() bool { return t.native != "" || t.dequant != nil }

const qkK = 256 // QK_K, the super-block size of the k-quants

var ggmlTypes = map[uint32]*ggmlType{
	0:  {name: "F32", blck: 1, size: 4, native: convert.Float32},
	1:  {name: "F16", blck: 1, size: 2, native: convert.Float16},
	2:  {name: "Q4_0", blck: 32, size: 2 + 16, dequant: dequantQ4_0},
	3:  {name: "Q4_1", blck: 32, size: 2 + 2 + 16, dequant: dequantQ4_1},
	6:  {name: "Q5_0", blck: 32, size: 2 + 4 + 16, dequant: dequantQ5_0},
	7:  {name: "Q5_1", blck: 32, size: 2 + 2 + 4 + 16, dequant: dequantQ5_1},
	8:  {name: "Q8_0", blck: 32, size: 2 + 32, dequant: dequantQ8_0},
	9:  {name: "Q8_1", blck: 32, size: 2 + 2 + 32, dequant: dequantQ8_1},
	10: {name: "Q2_K", blck: qkK, size: 2 + 2 + qkK/16 + qkK/4, dequant: dequantQ2_K},
	11: {name: "Q3_K", blck: qkK, size: 2 + qkK/4 + qkK/8 + 12, dequant: dequantQ3_K},
	12: {name: "Q4_K", blck: qkK, size: 2 + 2 + qkK/2 + 12, dequant: dequantQ4_K},
	13: {name: "Q5_K", blck: qkK, size: 2 + 2 + qkK/2 + qkK/8 + 12, dequant: dequantQ5_K},
	14: {name: "Q6_K", blck: qkK, size: 2 + qkK/2 + qkK/4 + qkK/16, dequant: dequantQ6_K},
	15: {name: "Q8_K", blck: qkK, size: 4 + qkK + qkK/8, dequant: dequantQ8_K},
	16: {name: "IQ2_XXS", blck: qkK, size: 2 + qkK/4},
	17: {name: "IQ2_XS", blck: qkK, size: 2 + qkK/4 + qkK/32},
	18: {name: "IQ3_XXS", blck: qkK, size: 2 + qkK/4 + qkK/8},
	19: {name: "IQ1_S", blck: qkK, size: 2 + qkK/8 + qkK/16},
	20: {name: "IQ4_NL", blck: 32, size: 2 + 16},
	21: {name: "IQ3_S", blck: qkK, size: 2 + qkK/4 + qkK/8 + qkK/32 + 4},
	22: {name: "IQ2_S", blck: qkK, size: 2 + qkK/4 + qkK/16},
	23: {name: "IQ4_XS", blck: qkK, size: 2 + 2 + qkK/2 + qkK/64},
	24: {name: "I8", blck: 1, size: 1, native: convert.Int8},
	25: {name: "I16", blck: 1, size: 2, native: convert.Int16},
	26: {name: "I32", blck: 1, size: 4, native: convert.Int32},
	27: {name: "I64", blck: 1, size: 8, native: convert.Int64},
	28: {name: "F64", blck: 1, size: 8, native: convert.Float64},
	29: {name: "IQ1_M", blck: qkK, size: qkK/8 + qkK/16 + qkK/32},
	30: {name: "BF16", blck: 1, size: 2, native: convert.BFloat16},
	// 31-33 (Q4_0_4_4 ...) and 36-38 (IQ4_NL_4_4 ...) were repacked
	// in-memory layouts, removed from GGUF files; geometry unknown here.
	31: {name: "Q4_0_4_4"},
	32: {name: "Q4_0_4_8"},
	33: {name: "Q4_0_8_8"},
	34: {name: "TQ1_0", blck: qkK, size: 2 + 4*13},
	35: {name: "TQ2_0", blck: qkK, size: 2 + 64},
	36: {name: "IQ4_NL_4_4"},
	37: {name: "IQ4_NL_4_8"},
	38: {name: "IQ4_NL_8_8"},
	39: {name: "MXFP4", blck: 32, size: 1 + 16},
	40: {name: "NVFP4"},
	41: {name: "Q1_0"},
}

// skipReason says why a tensor of type id is not exported.
func skipReason(id uint32, t *ggmlType) string {
	if t == nil {
		return fmt.Sprintf("ggml type %d is unknown to this reader", id)
	}
	return fmt.Sprintf("ggml type %s is not supported (no dequantizer)", t.name)
}
