package safetensors

// Test helpers: a safetensors writer built from the format's spec (no
// writer is packaged here), an in-memory Source, and the hostile cases.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"sort"

	"ckpt2csv/convert"
)

type stTensor struct {
	name  string
	dtype string
	shape []int64
	data  []byte
}

// stFile lays the tensors' data out in slice order and writes the header
// with its keys sorted by name (as the reference writer's JSON comes out),
// padded with spaces to 8 bytes as the reference writer pads it.
func stFile(meta map[string]string, ts ...stTensor) []byte {
	type ent struct {
		DType   string   `json:"dtype"`
		Shape   []int64  `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	var data []byte
	ents := map[string]ent{}
	for _, t := range ts {
		shape := t.shape
		if shape == nil {
			shape = []int64{}
		}
		ents[t.name] = ent{t.dtype, shape, [2]int64{int64(len(data)), int64(len(data) + len(t.data))}}
		data = append(data, t.data...)
	}
	keys := make([]string, 0, len(ents))
	for k := range ents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var h bytes.Buffer
	h.WriteByte('{')
	if meta != nil {
		b, _ := json.Marshal(meta)
		fmt.Fprintf(&h, `"__metadata__":%s`, b)
	}
	for i, k := range keys {
		if i > 0 || meta != nil {
			h.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(ents[k])
		fmt.Fprintf(&h, "%s:%s", kb, vb)
	}
	h.WriteByte('}')
	return rawFile(h.String(), data)
}

// rawFile is a safetensors file with this header text and data section.
func rawFile(header string, data []byte) []byte {
	hdr := []byte(header)
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

func le[T float32 | float64 | int16 | int32 | int64 | uint16 | uint32 | uint64](vs ...T) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, vs)
	return b.Bytes()
}

type mem struct {
	*bytes.Reader
	name  string
	files map[string][]byte // siblings
}

func memSource(name string, b []byte) *mem { return &mem{Reader: bytes.NewReader(b), name: name} }

func (m *mem) Name() string { return m.name }
func (m *mem) Sibling(_ context.Context, rel string) (convert.Source, error) {
	if b, ok := m.files[rel]; ok {
		return &mem{Reader: bytes.NewReader(b), name: rel, files: m.files}, nil
	}
	return nil, fmt.Errorf("open %s: %w", rel, fs.ErrNotExist)
}

type hostileCase struct {
	name, file string
	data       []byte
	msg        string
	export     bool
}

func hostileCases() []hostileCase {
	f32 := func(entries string, data int) []byte { return rawFile("{"+entries+"}", make([]byte, data)) }
	good := stFile(nil, stTensor{"a", "F32", []int64{2, 2}, le[float32](1, 2, 3, 4)})
	pastEOF := binary.LittleEndian.AppendUint64(nil, 1000)
	pastEOF = append(pastEOF, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`...)
	overLimit := binary.LittleEndian.AppendUint64(nil, 200<<20)
	overLimit = append(overLimit, `{"a":{}}`...)
	return []hostileCase{
		{"header length past the end", "safetensors-header-past-eof.safetensors", pastEOF, "runs past the end of the file", true},
		{"header over 100 MB", "safetensors-header-limit.safetensors", overLimit, "over the limit", true},
		{"bad JSON", "safetensors-bad-json.safetensors", rawFile(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]`, make([]byte, 4)), "not valid JSON", true},
		{"header not an object", "", rawFile(`{"a": [1, 2]}`, nil), "bad header entry", false},
		{"offsets out of range", "safetensors-out-of-range.safetensors", f32(`"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}`, 8), "past the data section", true},
		{"overlapping offsets", "safetensors-overlap.safetensors", f32(`"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}`, 16), "overlap", true},
		{"length disagrees with shape", "safetensors-length.safetensors", f32(`"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}`, 16), "hold 16 bytes, but F32 [3] needs 12", true},
		{"2^40 values over a tiny payload", "safetensors-huge-shape.safetensors", f32(`"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]}`, 8), "needs 4398046511104", true},
		{"product overflows int64", "", f32(`"a":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}`, 8), "too many elements", false},
		{"negative dimension", "safetensors-negative-dim.safetensors", f32(`"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}`, 16), "negative dimension", true},
		{"begin after end", "", f32(`"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}`, 8), "are not a range", false},
		{"negative offset", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}`, 8), "are not a range", false},
		{"three offsets", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}`, 8), "3 values, not 2", false},
		{"missing dtype", "", f32(`"a":{"shape":[1],"data_offsets":[0,4]}`, 8), "lacks dtype", false},
		{"duplicate name", "safetensors-duplicate.safetensors", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`, 8), "names \"a\" twice", true},
		{"a field given twice", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"I32"}`, 8), `gives "dtype" twice`, false},
		{"a field given twice in another case", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"DType":"I32"}`, 8), `gives "DType" twice`, false},
		{"metadata not an object", "", f32(`"__metadata__":"x","a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, 8), "__metadata__ is not a JSON object", false},
		{"junk after the JSON", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} {`, 8), "not valid JSON", false},
		{"offset beyond int64", "", f32(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}`, 8), "bad header entry", false},
		{"truncated data", "safetensors-truncated.safetensors", good[:len(good)-3], "past the data section", true},
		{"too short for a header", "", []byte{1, 0, 0}, "unrecognised", false},
		{"9 bytes", "", append(binary.LittleEndian.AppendUint64(nil, 2), '{'), "runs past the end", false},
	}
}

// narrow float bits and the float32 values the format defines for them.
var narrowCases = []struct {
	dtype string
	bits  []byte
	want  []float32
}{
	// bfloat16: the top 16 bits of a float32.
	{"BF16", le[uint16](0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x8000, 0x3e4d, 0x7f7f),
		[]float32{1, -2, float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-133, float32(math.Copysign(0, -1)), 0.2001953125, 0x1.fep127}},
	// float8 e4m3fn: bias 7, 3 mantissa bits, no Inf, 0x7f/0xff NaN, max 448.
	{"F8_E4M3", []byte{0x38, 0xb8, 0x7e, 0x01, 0x08, 0x00, 0x80, 0x3c, 0x07},
		[]float32{1, -1, 448, 0x1p-9, 0x1p-6, 0, float32(math.Copysign(0, -1)), 1.5, 7 * 0x1p-9}},
	// float8 e5m2: bias 15, 2 mantissa bits, IEEE Inf and NaN, max 57344.
	{"F8_E5M2", []byte{0x3c, 0xbc, 0x7b, 0x7c, 0xfc, 0x01, 0x04, 0x3e, 0x03},
		[]float32{1, -1, 57344, float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-16, 0x1p-14, 1.5, 3 * 0x1p-16}},
	// float16, for completeness: subnormal, max, -0.
	{"F16", le[uint16](0x3c00, 0x0001, 0x7bff, 0x8000, 0x3555), []float32{1, 0x1p-24, 65504, float32(math.Copysign(0, -1)), 0.333251953125}},
}

func decodeNarrow(dtype string, b []byte) []float32 {
	var out []float32
	switch dtype {
	case "BF16":
		for i := 0; i+1 < len(b); i += 2 {
			out = append(out, convert.BFloat16To32(binary.LittleEndian.Uint16(b[i:])))
		}
	case "F16":
		for i := 0; i+1 < len(b); i += 2 {
			out = append(out, convert.Float16To32(binary.LittleEndian.Uint16(b[i:])))
		}
	case "F8_E4M3":
		for _, v := range b {
			out = append(out, convert.Float8E4M3To32(v))
		}
	case "F8_E5M2":
		for _, v := range b {
			out = append(out, convert.Float8E5M2To32(v))
		}
	}
	return out
}
