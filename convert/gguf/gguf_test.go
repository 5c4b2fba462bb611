package gguf

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

var updateHostile = flag.Bool("update-hostile", false, "rewrite ../../testdata/hostile/gguf-* from the hostile cases")

func open(t testing.TB, b []byte) (convert.Checkpoint, error) {
	t.Helper()
	return Open(context.Background(), &converttest.Mem{Path: "test.gguf", Data: b}, convert.Limits{})
}

func mustOpen(t testing.TB, b []byte) convert.Checkpoint {
	t.Helper()
	ck, err := open(t, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

type expectedFile struct {
	converttest.Fixture
	Version   uint32 `json:"version"`
	Alignment int64  `json:"alignment"`
}

// The generated files: every block type dequantized bit for bit as the
// numpy reference (after gguf-py quants.py), every native type, v2, v3,
// big-endian, alignment 64, a 0-d scalar, a zero-size and a 4-d tensor.
func TestGeneratedFilesMatchNumpyReference(t *testing.T) {
	var exp map[string]expectedFile
	converttest.LoadJSON(t, "testdata/expected.json", &exp)
	if len(exp) != 3 {
		t.Fatalf("expected.json lists %d files", len(exp))
	}
	for file, want := range exp {
		t.Run(file, func(t *testing.T) {
			ck, err := converttest.Open(t, filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			info := ck.Info()
			if info.Format != "gguf" || info.Metadata["gguf_version"] != want.Version || info.Metadata["general.architecture"] != "test" {
				t.Errorf("format %q metadata %v", info.Format, info.Metadata)
			}
			if a, ok := info.Metadata["test.array"]; ok && !reflect.DeepEqual(a, []any{int32(1), int32(-2), int32(3)}) {
				t.Errorf("test.array = %#v", a) // big-endian metadata too
			}
			converttest.MatchTensors(t, ck, want.Tensors)
			for _, tn := range info.Tensors {
				if tn.Layer != "" || tn.Param != "" {
					t.Errorf("%s: layer/param %q %q, want the default split", tn.Name, tn.Layer, tn.Param)
				}
			}
			converttest.MatchSkipped(t, info.Skipped, want.Skipped)
		})
	}
}

// Hand-checked values for one block of each legacy type and two k-quants.
func TestDequantizeKnownBlocks(t *testing.T) {
	one := le(f16bits(1))
	half := le(f16bits(0.5))
	nib := make([]byte, 16) // value j: low nibble j, high nibble 15-j
	for j := range nib {
		nib[j] = byte(j) | byte(15-j)<<4
	}
	q8 := make([]byte, 32)
	for j := range q8 {
		q8[j] = byte(int8(j - 16))
	}
	cases := []struct {
		name  string
		typ   uint32
		block []byte
		want  func(j int) float32
	}{
		{"Q4_0 is (q-8)*d", 2, append(append([]byte{}, half...), nib...), func(j int) float32 {
			if j < 16 {
				return float32(j-8) * 0.5
			}
			return float32(15-(j-16)-8) * 0.5
		}},
		{"Q4_1 is q*d+m", 3, append(append(append([]byte{}, half...), le(f16bits(-1))...), nib...), func(j int) float32 {
			if j < 16 {
				return float32(j)*0.5 - 1
			}
			return float32(15-(j-16))*0.5 - 1
		}},
		{"Q5_0 adds the fifth bit", 6, append(append(append([]byte{}, one...), le(uint32(0xFFFF0000))...), nib...), func(j int) float32 {
			if j < 16 {
				return float32(j - 16) // qh bits 0..15 clear
			}
			return float32(15 - (j - 16) + 16 - 16)
		}},
		{"Q8_0 is q*d", 8, append(append([]byte{}, half...), q8...), func(j int) float32 { return float32(j-16) * 0.5 }},
		{"Q8_1 ignores the sum", 9, append(append(append([]byte{}, half...), le(f16bits(123))...), q8...), func(j int) float32 { return float32(j-16) * 0.5 }},
		{"Q8_K has a float32 scale", 15, append(append(le(float32(0.25)), repeat(q8, 8)...), make([]byte, 32)...), func(j int) float32 { return float32(j%32-16) * 0.25 }},
		{"Q6_K all-zero quants are -32*d*scale", 14, append(append(make([]byte, 192), repeat([]byte{2}, 16)...), half...), func(int) float32 { return -32 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ := ggmlTypes[c.typ]
			if int64(len(c.block)) != typ.size {
				t.Fatalf("block is %d bytes, %s blocks are %d", len(c.block), typ.name, typ.size)
			}
			out := make([]float32, typ.blck)
			typ.dequant(c.block, out)
			for j, v := range out {
				if w := c.want(j); v != w {
					t.Fatalf("value %d = %v, want %v", j, v, w)
				}
			}
		})
	}
}

func repeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

func TestMetadataOfEveryValueType(t *testing.T) {
	long := make([][]byte, 100)
	for i := range long {
		long[i] = gstr("tok")
	}
	f := fixture{kv: [][]byte{
		kvPair("u8", tUint8, le(uint8(200))),
		kvPair("i8", tInt8, le(int8(-5))),
		kvPair("u16", tUint16, le(uint16(60000))),
		kvPair("i16", tInt16, le(int16(-30000))),
		kvPair("u32", tUint32, le(uint32(4000000000))),
		kvPair("i32", tInt32, le(int32(-2000000000))),
		kvPair("f32", tFloat32, le(float32(1e-5))),
		kvPair("f32.nan", tFloat32, le(float32(math.NaN()))),
		kvPair("bool", tBool, le(uint8(1))),
		kvPair("str", tString, gstr("llama")),
		kvPair("u64", tUint64, le(uint64(math.MaxUint64))),
		kvPair("i64", tInt64, le(int64(math.MinInt64))),
		kvPair("f64", tFloat64, le(0.1)),
		kvPair("f64.inf", tFloat64, le(math.Inf(-1))),
		kvPair("arr.i32", tArray, garr(tInt32, le(int32(1)), le(int32(-2)))),
		kvPair("arr.str", tArray, garr(tString, gstr("a"), gstr("é"))),
		kvPair("arr.nested", tArray, garr(tArray, garr(tUint8, le(uint8(1))), garr(tString, gstr("x")))),
		kvPair("arr.empty", tArray, garr(tFloat64)),
		kvPair("tokenizer.ggml.tokens", tArray, garr(tString, long...)),
		kvPair("tokenizer.ggml.scores", tArray, garr(tFloat32, repeatItems(le(float32(0)), 1000)...)),
		kvPair("arr.long.nested", tArray, garr(tArray, repeatItems(garr(tString, gstr("ab")), 65)...)),
		kvPair("tokenizer.huggingface.json", tString, gstr(strings.Repeat("x", maxStringBytes+1))),
		kvPair("general.alignment", tUint32, le(uint32(32))),
	}}
	ck := mustOpen(t, f.bytes())
	want := map[string]any{
		"u8": uint8(200), "i8": int8(-5), "u16": uint16(60000), "i16": int16(-30000),
		"u32": uint32(4000000000), "i32": int32(-2000000000), "f32": float32(1e-5), "f32.nan": nil,
		"bool": true, "str": "llama", "u64": uint64(math.MaxUint64), "i64": int64(math.MinInt64),
		"f64": 0.1, "f64.inf": nil,
		"arr.i32":                    []any{int32(1), int32(-2)},
		"arr.str":                    []any{"a", "é"},
		"arr.nested":                 []any{[]any{uint8(1)}, []any{"x"}},
		"arr.empty":                  []any{},
		"tokenizer.ggml.tokens":      map[string]any{"type": "string", "len": uint64(100)},
		"tokenizer.ggml.scores":      map[string]any{"type": "float32", "len": uint64(1000)},
		"arr.long.nested":            map[string]any{"type": "array", "len": uint64(65)},
		"tokenizer.huggingface.json": map[string]any{"type": "string", "bytes": uint64(maxStringBytes + 1)},
		"general.alignment":          uint32(32),
		"gguf_version":               uint32(3),
	}
	got := ck.Info().Metadata
	if !reflect.DeepEqual(got, want) {
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("%s = %#v, want %#v", k, got[k], w)
			}
		}
		t.Errorf("metadata has %d keys, want %d", len(got), len(want))
	}
	// The sidecar writer marshals this map: it must be valid JSON.
	if _, err := json.Marshal(got); err != nil {
		t.Fatal(err)
	}
}

// Past the keep budget, metadata is summarised even when short.
func TestMetadataMemoryIsBounded(t *testing.T) {
	var kv [][]byte
	big := strings.Repeat("s", maxStringBytes)
	n := keepBudget/maxStringBytes + 10
	for i := range n {
		kv = append(kv, kvPair(fmt.Sprintf("k%04d", i), tString, gstr(big)))
	}
	ck := mustOpen(t, fixture{kv: kv}.bytes())
	md := ck.Info().Metadata
	if md["k0000"] != big {
		t.Errorf("first string not kept")
	}
	if last := md[fmt.Sprintf("k%04d", n-1)]; !reflect.DeepEqual(last, map[string]any{"type": "string", "bytes": uint64(maxStringBytes)}) {
		t.Errorf("last string: %.40v", last)
	}
}

func repeatItems(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestVersionsTwoAndThreeReadAlike(t *testing.T) {
	tensors := []ftensor{{name: "w", ne: []uint64{3, 2}, typ: 0, data: f32s(1, 2, 3, 4, 5, 6), offset: -1}}
	for _, v := range []uint32{2, 3} {
		ck := mustOpen(t, fixture{version: v, tensors: tensors}.bytes())
		if got := ck.Info().Tensors[0]; !reflect.DeepEqual(got.Shape, []int64{2, 3}) || got.DType != convert.Float32 {
			t.Errorf("v%d: %+v", v, got)
		}
		if vals := converttest.Values(t, ck, 0); !reflect.DeepEqual(vals, f32s(1, 2, 3, 4, 5, 6)) {
			t.Errorf("v%d: values %v", v, vals)
		}
	}
}

func TestAlignment(t *testing.T) {
	for _, a := range []int64{1, 8, 32, 64, 4096} {
		f := fixture{alignment: a, kv: [][]byte{kvPair("general.alignment", tUint32, le(uint32(a)))}, tensors: []ftensor{
			{name: "a", ne: []uint64{3}, typ: 0, data: f32s(1, 2, 3), offset: -1},
			{name: "b", ne: []uint64{1}, typ: 0, data: f32s(4), offset: -1},
		}}
		ck := mustOpen(t, f.bytes())
		if vals := converttest.Values(t, ck, 1); !reflect.DeepEqual(vals, f32s(4)) {
			t.Errorf("alignment %d: values %v", a, vals)
		}
	}
}

func TestUnsupportedTypesAreSkippedNotFatal(t *testing.T) {
	f := fixture{tensors: []ftensor{
		{name: "iq", ne: []uint64{256}, typ: 16, data: make([]byte, 66), offset: -1},
		{name: "repacked", ne: []uint64{32}, typ: 31, data: make([]byte, 18), offset: -1},
		{name: "ok", ne: []uint64{2}, typ: 0, data: f32s(1, 2), offset: -1},
	}}
	ck := mustOpen(t, f.bytes())
	info := ck.Info()
	if len(info.Tensors) != 1 || info.Tensors[0].Name != "ok" {
		t.Fatalf("tensors %+v", info.Tensors)
	}
	want := []convert.Skipped{
		{Name: "iq", Reason: "ggml type IQ2_XXS is not supported (no dequantizer)"},
		{Name: "repacked", Reason: "ggml type Q4_0_4_4 is not supported (no dequantizer)"},
	}
	if !reflect.DeepEqual(info.Skipped, want) {
		t.Errorf("skipped %+v", info.Skipped)
	}
}

func TestUnknownTypeIdIsInvalid(t *testing.T) {
	f := fixture{tensors: []ftensor{
		{name: "future", ne: []uint64{7}, typ: 1000, data: make([]byte, 10), offset: -1},
		{name: "ok", ne: []uint64{2}, typ: 0, data: f32s(1, 2), offset: -1},
	}}
	_, err := open(t, f.bytes())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "unknown ggml type 1000") {
		t.Fatalf("err = %v", err)
	}
}

func TestZeroTensorFileExportsNothingAndSaysSo(t *testing.T) {
	ck := mustOpen(t, fixture{kv: [][]byte{kvPair("general.architecture", tString, gstr("llama"))}}.bytes())
	info := ck.Info()
	if len(info.Tensors) != 0 || len(info.Skipped) != 1 || !strings.Contains(info.Skipped[0].Reason, "no tensors") {
		t.Fatalf("%+v", info)
	}
	if info.Metadata["general.architecture"] != "llama" {
		t.Errorf("metadata %v", info.Metadata)
	}
}

// The real llama.cpp vocabulary file: zero tensors, 22 metadata keys.
func TestRealVocabularyFile(t *testing.T) {
	path, exp := converttest.Real(t, "gguf_vocab_llama_spm")
	if len(exp.Tensors) != 0 {
		t.Fatalf("ground truth lists %d tensors", len(exp.Tensors))
	}
	ck, err := converttest.Open(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	info := ck.Info()
	if info.Format != "gguf" || len(info.Tensors) != 0 || len(info.Skipped) != 1 {
		t.Fatalf("format %s, %d tensors, skipped %v", info.Format, len(info.Tensors), info.Skipped)
	}
	raw, err := os.ReadFile(filepath.Join(converttest.RealFixtures(), "expected", "gguf_vocab_llama_spm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gt struct {
		Info struct {
			Version int            `json:"gguf_version"`
			Keys    int            `json:"metadata_keys"`
			Sample  map[string]any `json:"metadata_sample"`
		} `json:"info"`
	}
	if err := json.Unmarshal(raw, &gt); err != nil {
		t.Fatal(err)
	}
	md := info.Metadata
	if len(md) != gt.Info.Keys+1 || md["gguf_version"] != uint32(gt.Info.Version) {
		t.Errorf("%d metadata keys (version %v), want %d + gguf_version %d", len(md), md["gguf_version"], gt.Info.Keys, gt.Info.Version)
	}
	for k, w := range gt.Info.Sample {
		g := md[k]
		switch w := w.(type) {
		case string:
			if n, ok := strings.CutPrefix(w, "array["); ok {
				s, _ := g.(map[string]any)
				if s == nil || s["len"] != mustUint(strings.TrimSuffix(n, "]")) {
					t.Errorf("%s = %v, want a summary of %s", k, g, w)
				}
			} else if g != w {
				t.Errorf("%s = %v, want %q", k, g, w)
			}
		case bool:
			if g != w {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
		case float64:
			if f, ok := g.(float32); ok {
				if f != float32(w) {
					t.Errorf("%s = %v, want %v", k, g, w)
				}
			} else if toF64(g) != w {
				t.Errorf("%s = %v (%T), want %v", k, g, g, w)
			}
		}
	}
	if _, err := json.Marshal(md); err != nil {
		t.Fatal(err)
	}
}

func mustUint(s string) uint64 {
	var n uint64
	for _, c := range s {
		n = n*10 + uint64(c-'0')
	}
	return n
}

func toF64(v any) float64 {
	switch v := v.(type) {
	case uint8, uint16, uint32, uint64, int8, int16, int32, int64:
		return float64(reflect.ValueOf(v).Convert(reflect.TypeFor[float64]()).Float())
	}
	return math.NaN()
}

func splitFiles(t *testing.T, count int, tensorsCount int64, mutate func(i int, f *fixture)) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range count {
		f := fixture{kv: [][]byte{
			kvPair("split.no", tUint16, le(uint16(i))),
			kvPair("split.count", tUint16, le(uint16(count))),
			kvPair("split.tensors.count", tInt32, le(int32(tensorsCount))),
		}, tensors: []ftensor{
			{name: fmt.Sprintf("blk.%d.weight", i), ne: []uint64{2}, typ: 0, data: f32s(float32(i), float32(10*i)), offset: -1},
		}}
		if i == 0 {
			f.kv = append(f.kv, kvPair("general.name", tString, gstr("split model")))
		}
		if mutate != nil {
			mutate(i, &f)
		}
		files[splitRel("model", i+1, count)] = f.bytes()
	}
	return files
}

func splitRel(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no, count)
}

func TestSplitFilesAreOneCheckpoint(t *testing.T) {
	files := splitFiles(t, 3, 3, nil)
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ck, err := converttest.Open(t, filepath.Join(dir, "model-00001-of-00003.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	info := ck.Info()
	if len(info.Tensors) != 3 || info.Metadata["general.name"] != "split model" {
		t.Fatalf("%+v", info)
	}
	for i := range 3 {
		if got := converttest.Values(t, ck, i); !reflect.DeepEqual(got, f32s(float32(i), float32(10*i))) {
			t.Errorf("tensor %d: %v", i, got)
		}
	}

	// A later split on its own exports nothing and names the first.
	ck2, err := converttest.Open(t, filepath.Join(dir, "model-00002-of-00003.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck2.Close()
	if in := ck2.Info(); len(in.Tensors) != 0 || len(in.Skipped) != 1 || !strings.Contains(in.Skipped[0].Reason, "model-00001-of-00003.gguf") {
		t.Errorf("split 2 alone: %+v", in)
	}
}

func TestSplitErrors(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string][]byte
		open    string
		invalid bool
		msg     string
	}{
		{"missing split", func() map[string][]byte {
			f := splitFiles(t, 3, 3, nil)
			delete(f, "model-00003-of-00003.gguf")
			return f
		}(), "model-00001-of-00003.gguf", false, "opening split 3 of 3"},
		{"wrong split number", splitFiles(t, 2, 2, func(i int, f *fixture) {
			if i == 1 {
				f.kv[0] = kvPair("split.no", tUint16, le(uint16(0)))
			}
		}), "model-00001-of-00002.gguf", true, "says it is split 1 of 2, expected split 2 of 2"},
		{"tensor count mismatch", splitFiles(t, 2, 5, nil), "model-00001-of-00002.gguf", true, "split.tensors.count is 5"},
		{"duplicate tensor across splits", splitFiles(t, 2, 2, func(i int, f *fixture) { f.tensors[0].name = "same" }), "model-00001-of-00002.gguf", true, `"same" appears in two splits`},
		{"renamed first split", map[string][]byte{"renamed.gguf": splitFiles(t, 2, 2, nil)["model-00001-of-00002.gguf"]}, "renamed.gguf", true, "does not follow NAME-00001-of-00002.gguf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &converttest.Mem{Path: "s3://bucket/dir/" + c.open, Data: c.files[c.open], Files: c.files}
			_, err := Open(context.Background(), src, convert.Limits{})
			if err == nil || !strings.Contains(err.Error(), c.msg) || errors.Is(err, convert.ErrInvalid) != c.invalid {
				t.Fatalf("err = %v (invalid %v), want %q (invalid %v)", err, errors.Is(err, convert.ErrInvalid), c.msg, c.invalid)
			}
		})
	}
}

// A tensor far larger than one chunk streams identically however it is read.
func TestLargeQuantizedTensorStreamsInChunks(t *testing.T) {
	typ := ggmlTypes[12] // Q4_K
	nb := 3*chunkBytes/int(typ.size) + 7
	data := make([]byte, nb*int(typ.size))
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	for b := range nb { // finite scales
		binary.LittleEndian.PutUint16(data[b*int(typ.size):], f16bits(0.01))
		binary.LittleEndian.PutUint16(data[b*int(typ.size)+2:], f16bits(0.002))
	}
	want := make([]byte, 0, nb*qkK*4)
	vals := make([]float32, qkK)
	for b := range nb {
		typ.dequant(data[b*int(typ.size):(b+1)*int(typ.size)], vals)
		for _, v := range vals {
			want = binary.LittleEndian.AppendUint32(want, math.Float32bits(v))
		}
	}
	ck := mustOpen(t, fixture{tensors: []ftensor{{name: "big", ne: []uint64{qkK, uint64(nb)}, typ: 12, data: data, offset: -1}}}.bytes())
	if got := converttest.Values(t, ck, 0); string(got) != string(want) {
		t.Fatal("chunked stream differs from block-by-block dequantization")
	}
	rc, err := ck.Values(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(iotest.OneByteReader(rc)); err != nil || string(got) != string(want) {
		t.Fatalf("one byte at a time: %v", err)
	}
}

func TestValuesStopsOnCancel(t *testing.T) {
	ck := mustOpen(t, fixture{tensors: []ftensor{{name: "q", ne: []uint64{32}, typ: 8, data: make([]byte, 34), offset: -1}}}.bytes())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rc, err := ck.Values(ctx, 0)
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// hostileCases are corrupt or hostile files; each must fail with ErrInvalid
// and a message containing msg. They are also written to the shared
// ../../testdata/hostile folder (go test -run TestHostile -update-hostile).
func hostileCases() []struct {
	file, msg string
	b         []byte
} {
	u := func(v uint64) *uint64 { return &v }
	w := []ftensor{{name: "w", ne: []uint64{4}, typ: 0, data: f32s(1, 2, 3, 4), offset: -1}}
	deep := garr(tUint8)
	for range 9 {
		deep = garr(tArray, deep)
	}
	return []struct {
		file, msg string
		b         []byte
	}{
		{"data-past-end", `tensor "w": data ends at 4064, past the file (68 bytes)`, fixture{tensors: []ftensor{{name: "w", ne: []uint64{1000}, typ: 0, data: f32s(1), offset: -1}}}.bytes()},
		{"huge-string", "needs 1152921504606846976 bytes", fixture{kv: [][]byte{append(gstr("k"), le(uint32(tString), uint64(1)<<60)...)}}.bytes()},
		{"huge-array", "an array of 1152921504606846976 string values cannot fit", fixture{kv: [][]byte{append(gstr("tokenizer.ggml.tokens"), le(uint32(tArray), uint32(tString), uint64(1)<<60)...)}}.bytes()},
		{"huge-tensor-count", "tensors exceed the limit", fixture{nTensors: u(1 << 60)}.bytes()},
		{"huge-kv-count", "1152921504606846976 metadata pairs exceed the limit of 65536", fixture{nKV: u(1 << 60)}.bytes()},
		{"kv-count-past-end", "60000 metadata pairs and 2 tensor infos cannot fit in the 8 bytes left in the file", fixture{nKV: u(60000), nTensors: u(2)}.bytes()},
		{"too-many-dims", `tensor "w" has 5 dimensions`, fixture{tensors: []ftensor{{name: "w", ne: []uint64{1, 1, 1, 1, 4}, typ: 0, data: f32s(1, 2, 3, 4), offset: -1}}}.bytes()},
		{"misaligned-offset", "is not a multiple of the alignment 32", fixture{tensors: []ftensor{{name: "w", ne: []uint64{1}, typ: 0, data: f32s(1), offset: 4}}}.bytes()},
		{"overlapping-tensors", "overlap", fixture{tensors: []ftensor{w[0], {name: "v", ne: []uint64{4}, typ: 0, data: f32s(1, 2, 3, 4), offset: 0}}}.bytes()},
		{"truncated-header", "left in the file", fixture{kv: [][]byte{kvPair("general.name", tString, gstr("a name"))}}.bytes()[:40]},
		{"version-1", "GGUF version 1 is not supported", fixture{version: 1}.bytes()},
		{"version-4", "GGUF version 4 is not supported", fixture{version: 4}.bytes()},
		{"alignment-not-power-of-two", "general.alignment 48 is not a power of two", fixture{kv: [][]byte{kvPair("general.alignment", tUint32, le(uint32(48)))}}.bytes()},
		{"partial-block-row", "not a whole number of Q4_0 blocks", fixture{tensors: []ftensor{{name: "w", ne: []uint64{16, 2}, typ: 2, data: make([]byte, 18), offset: -1}}}.bytes()},
		{"duplicate-tensor", `tensor name "w" appears twice`, fixture{tensors: []ftensor{w[0], w[0]}}.bytes()},
		{"duplicate-key", `metadata key "a" appears twice`, fixture{kv: [][]byte{kvPair("a", tUint8, le(uint8(1))), kvPair("a", tUint8, le(uint8(2)))}}.bytes()},
		{"nested-arrays", "nested more than 8 deep", fixture{kv: [][]byte{kvPair("deep", tArray, deep)}}.bytes()},
		{"element-overflow", "too many elements", fixture{tensors: []ftensor{{name: "w", ne: []uint64{1 << 40, 1 << 40}, typ: 0, data: f32s(1), offset: -1}}}.bytes()},
		{"unknown-value-type", "unknown value type 13", fixture{kv: [][]byte{kvPair("k", 13, le(uint8(1)))}}.bytes()},
	}
}

func TestHostile(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "hostile")
	for _, c := range hostileCases() {
		t.Run(c.file, func(t *testing.T) {
			_, err := open(t, c.b)
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want ErrInvalid with %q on one line", err, c.msg)
			}
			name := filepath.Join(dir, "gguf-"+c.file+".gguf")
			if *updateHostile {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, c.b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name+".err", []byte(c.msg+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The committed file must still fail the same way.
			if _, err := os.Stat(name); err == nil {
				ck, err := converttest.Open(t, name)
				if err == nil {
					ck.Close()
				}
				converttest.CheckRefused(t, name, err)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	b := fixture{kv: [][]byte{kvPair("general.name", tString, gstr(strings.Repeat("n", 1000)))}}.bytes()
	_, err := Open(context.Background(), &converttest.Mem{Path: "x.gguf", Data: b}, convert.Limits{MaxHeaderBytes: 512})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "header is larger than the limit of 512 bytes") {
		t.Fatalf("err = %v", err)
	}
	_, err = Open(context.Background(), &converttest.Mem{Path: "x.gguf", Data: fixture{tensors: []ftensor{{name: "a", ne: []uint64{1}, data: f32s(1), offset: -1}, {name: "b", ne: []uint64{1}, data: f32s(1), offset: -1}}}.bytes()}, convert.Limits{MaxTensors: 1})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "2 tensors exceed the limit of 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestDetection(t *testing.T) {
	b := fixture{tensors: []ftensor{{name: "w", ne: []uint64{1}, data: f32s(1), offset: -1}}}.bytes()
	f, err := convert.Detect(&converttest.Mem{Path: "model.bin", Data: b})
	if err != nil || f.Name != "gguf" {
		t.Fatalf("detect: %v %v", f.Name, err)
	}
}

func BenchmarkDequantize(b *testing.B) {
	scales := map[uint32][]int{2: {0}, 8: {0}, 12: {0, 2}, 14: {208}} // float16 scale offsets
	for _, id := range []uint32{2, 8, 12, 14} {
		typ := ggmlTypes[id]
		nb := 4096
		data := make([]byte, nb*int(typ.size))
		for i := range data {
			data[i] = byte(i*31 + i>>7)
		}
		for b := range nb { // realistic scales: no Inf, NaN or subnormal arithmetic
			for _, off := range scales[id] {
				binary.LittleEndian.PutUint16(data[b*int(typ.size)+off:], f16bits(0.01))
			}
		}
		ck := mustOpen(b, fixture{tensors: []ftensor{{name: "w", ne: []uint64{uint64(typ.blck), uint64(nb)}, typ: id, data: data, offset: -1}}}.bytes())
		b.Run(typ.name, func(b *testing.B) {
			b.SetBytes(int64(nb) * typ.blck * 4)
			b.ReportAllocs()
			for b.Loop() {
				rc, _ := ck.Values(context.Background(), 0)
				io.Copy(io.Discard, rc)
				rc.Close()
			}
			b.ReportMetric(float64(int64(nb)*typ.blck*int64(b.N))/b.Elapsed().Seconds(), "values/s")
		})
	}
}
