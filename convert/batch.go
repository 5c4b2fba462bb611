package convert

import (
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Batches carry values from a reader to the CSV formatter as Arrow record
// batches of two columns, flat_index (int64) and value. Everything constant
// per tensor (its name, layer, param type, index) travels once, beside the
// batch, not as a string per row: building per-row strings cost more than
// formatting the values.

// BatchValues is the number of values per record batch: large enough that
// per-batch costs vanish, small enough that a few batches in flight per
// worker keep memory flat (16 Ki values is at most 128 KiB of float64 and
// about 1 MiB of CSV text). A batch's text then stays in cache from its
// formatting through its checksum and write: at 32 Ki, a ResNet-18 export
// without compression took 9-15% longer, and smaller batches cost more per
// batch than they saved.
const BatchValues = 16 << 10

var flatIndexField = arrow.Field{Name: "flat_index", Type: arrow.PrimitiveTypes.Int64}

// arrowType is the Arrow type of a batch's value column for values of type d.
// Narrow floats (float16, bfloat16, float8) travel widened to float32, which
// holds them exactly and is the width their shortest text is written at.
func arrowType(d DType) arrow.DataType {
	switch d {
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case Float32, Float16, BFloat16, Float8E4M3, Float8E5M2:
		return arrow.PrimitiveTypes.Float32
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Int32:
		return arrow.PrimitiveTypes.Int32
	case Int16:
		return arrow.PrimitiveTypes.Int16
	case Int8:
		return arrow.PrimitiveTypes.Int8
	case Uint64:
		return arrow.PrimitiveTypes.Uint64
	case Uint32:
		return arrow.PrimitiveTypes.Uint32
	case Uint16:
		return arrow.PrimitiveTypes.Uint16
	case Uint8:
		return arrow.PrimitiveTypes.Uint8
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	panic("convert: no arrow type for " + string(d))
}

// schemaFor is the record schema of a tensor's batches.
func schemaFor(d DType) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{flatIndexField, {Name: "value", Type: arrowType(d)}}, nil)
}

// buildRecord wraps raw little-endian values of type d (n of them, starting at
// flat index first) as a record batch. raw and scratch back the arrays without
// copying where the layout allows; both must outlive the record.
func buildRecord(schema *arrow.Schema, d DType, raw []byte, n int, first int64, idx []int64, scratch []byte) arrow.RecordBatch {
	for i := range idx[:n] {
		idx[i] = first + int64(i)
	}
	idxData := array.NewData(arrow.PrimitiveTypes.Int64, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(int64Bytes(idx[:n]))}, nil, 0, 0)
	defer idxData.Release()

	vals := raw
	switch d {
	case Float16, BFloat16, Float8E4M3, Float8E5M2:
		vals = scratch[:4*n]
		widen(d, raw, float32s(vals))
	case Bool:
		vals = scratch[:(n+7)/8]
		clear(vals)
		for i, v := range raw[:n] {
			if v != 0 {
				vals[i>>3] |= 1 << (i & 7)
			}
		}
	}
	valData := array.NewData(arrowType(d), n, []*memory.Buffer{nil, memory.NewBufferBytes(vals)}, nil, 0, 0)
	defer valData.Release()
	cols := []arrow.Array{array.NewInt64Data(idxData), array.MakeFromData(valData)}
	rec := array.NewRecordBatch(schema, cols, int64(n))
	cols[0].Release()
	cols[1].Release()
	return rec
}

// widen converts narrow float bits to float32.
func widen(d DType, raw []byte, out []float32) {
	switch d {
	case Float16:
		for i := range out {
			out[i] = Float16To32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
	case BFloat16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(raw[2*i])<<16 | uint32(raw[2*i+1])<<24)
		}
	case Float8E4M3:
		for i := range out {
			out[i] = float8E4M3Table[raw[i]]
		}
	case Float8E5M2:
		for i := range out {
			out[i] = Float8E5M2To32(raw[i])
		}
	}
}

var float8E4M3Table = func() (t [256]float32) {
	for i := range t {
		t[i] = Float8E4M3To32(uint8(i))
	}
	return t
}()

// The host is little-endian (amd64, arm64), so little-endian value bytes can
// be viewed as Go numbers without copying.
func float32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

func int64Bytes(v []int64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*8)
}
