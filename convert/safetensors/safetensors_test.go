package safetensors

// Tests of the safetensors reader on files built from the spec: every
// dtype, order, narrow float values, hostile headers, sharded indexes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// allDTypes is one tensor of every dtype, with the values' bytes as written.
func allDTypes() []stTensor {
	nan32 := math.Float32frombits(0x7fc00001) // a NaN with a payload
	return []stTensor{
		{"model.layers.0.weight", "F32", []int64{2, 3}, le[float32](1.5, float32(math.Copysign(0, -1)), float32(math.Inf(1)), nan32, 0x1p-149, math.MaxFloat32)},
		{"model.layers.0.bias", "F64", []int64{3}, le(math.Pi, -0x1p-1074, math.Inf(-1))},
		{"half", "F16", []int64{4}, le[uint16](0x3c00, 0x0001, 0x7bff, 0xfc00)},
		{"brain", "BF16", []int64{2, 2}, le[uint16](0x3f80, 0xc000, 0x7fc0, 0x0001)},
		{"e4m3", "F8_E4M3", []int64{5}, []byte{0x38, 0xb8, 0x7e, 0x01, 0x7f}},
		{"e5m2", "F8_E5M2", []int64{5}, []byte{0x3c, 0xbc, 0x7b, 0x7c, 0x7e}},
		{"i64", "I64", []int64{2}, le[int64](math.MinInt64, math.MaxInt64)},
		{"i32", "I32", []int64{2}, le[int32](math.MinInt32, 7)},
		{"i16", "I16", []int64{2}, le[int16](-300, 300)},
		{"i8", "I8", []int64{3}, []byte{0x80, 0x7f, 0xff}},
		{"u64", "U64", []int64{1}, le[uint64](math.MaxUint64)},
		{"u32", "U32", []int64{1}, le[uint32](math.MaxUint32)},
		{"u16", "U16", []int64{1}, le[uint16](65535)},
		{"u8", "U8", []int64{2}, []byte{0, 255}},
		{"mask", "BOOL", []int64{3}, []byte{1, 0, 1}},
		{"scalar", "F64", nil, le(2.5)},
		{"empty", "F32", []int64{0, 4}, nil},
		{"scales", "F8_E8M0", []int64{2}, []byte{127, 128}},
		{"complex", "C64", []int64{1}, le[float32](1, 2)},
		{"fp4", "F4", []int64{2}, []byte{0x12}},
	}
}

var wantDType = map[string]convert.DType{
	"F64": convert.Float64, "F32": convert.Float32, "F16": convert.Float16, "BF16": convert.BFloat16,
	"F8_E4M3": convert.Float8E4M3, "F8_E5M2": convert.Float8E5M2, "I64": convert.Int64, "I32": convert.Int32,
	"I16": convert.Int16, "I8": convert.Int8, "U64": convert.Uint64, "U32": convert.Uint32, "U16": convert.Uint16,
	"U8": convert.Uint8, "BOOL": convert.Bool,
}

func openBytes(t *testing.T, name string, b []byte) convert.Checkpoint {
	t.Helper()
	ck, err := convert.Open(context.Background(), memSource(name, b), "auto", convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func TestEveryDType(t *testing.T) {
	ts := allDTypes()
	ck := openBytes(t, "all.safetensors", stFile(map[string]string{"format": "pt", "note": "=1+2"}, ts...))
	info := ck.Info()
	if info.Format != "safetensors" {
		t.Fatalf("format %q", info.Format)
	}
	if fmt.Sprint(info.Metadata) != "map[format:pt note:=1+2]" {
		t.Errorf("metadata %v", info.Metadata)
	}
	i := 0
	var skipped []string
	for _, w := range ts {
		dt, ok := wantDType[w.dtype]
		if !ok {
			skipped = append(skipped, w.name)
			continue
		}
		tn := info.Tensors[i]
		if tn.Name != w.name || tn.DType != dt || fmt.Sprint(tn.Shape) != fmt.Sprint(w.shape) && len(w.shape) != 0 {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, tn.Name, tn.DType, tn.Shape, w.name, dt, w.shape)
		}
		if tn.Shape == nil {
			t.Errorf("%s: nil shape, want empty", tn.Name)
		}
		if got := converttest.Values(t, ck, i); !bytes.Equal(got, w.data) {
			t.Errorf("%s: values % x, want % x", w.name, got, w.data)
		}
		i++
	}
	if i != len(info.Tensors) {
		t.Errorf("%d tensors, want %d", len(info.Tensors), i)
	}
	var got []string
	for _, s := range info.Skipped {
		got = append(got, s.Name)
		if !strings.Contains(s.Reason, "is not exported") {
			t.Errorf("skipped %s: reason %q", s.Name, s.Reason)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(skipped) {
		t.Errorf("skipped %v, want %v", got, skipped)
	}
}

// Tensors come in data order, whatever the JSON key order.
func TestOrderIsDataOrder(t *testing.T) {
	ck := openBytes(t, "o.safetensors", stFile(nil,
		stTensor{"z.weight", "F32", []int64{1}, le[float32](1)},
		stTensor{"a.bias", "F32", []int64{1}, le[float32](2)},
		stTensor{"m.empty", "F32", []int64{0}, nil},
		stTensor{"b.weight", "F32", []int64{1}, le[float32](3)},
	))
	var got []string
	for _, tn := range ck.Info().Tensors {
		got = append(got, tn.Name)
	}
	if want := "[z.weight a.bias m.empty b.weight]"; fmt.Sprint(got) != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

// Gaps between tensors (alignment padding) and trailing bytes are accepted.
func TestGapsAreAccepted(t *testing.T) {
	hdr := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}`
	data := append(append(le[float32](1), 0xee, 0xee, 0xee, 0xee), append(le(2.0), 9, 9, 9)...)
	ck := openBytes(t, "g.safetensors", rawFile(hdr, data))
	if got := converttest.Values(t, ck, 1); !bytes.Equal(got, le(2.0)) {
		t.Fatalf("b = % x", got)
	}
}

// Narrow floats stream as their bits; widened, they are the values the format defines.
func TestNarrowFloatValues(t *testing.T) {
	for _, c := range narrowCases {
		t.Run(c.dtype, func(t *testing.T) {
			itemsize := map[string]int{"BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1}[c.dtype]
			ck := openBytes(t, "n.safetensors", stFile(nil, stTensor{"x", c.dtype, []int64{int64(len(c.bits) / itemsize)}, c.bits}))
			got := decodeNarrow(c.dtype, converttest.Values(t, ck, 0))
			for i, w := range c.want {
				if math.Float32bits(got[i]) != math.Float32bits(w) {
					t.Errorf("value %d (bits % x): %g (%#08x), want %g (%#08x)", i, c.bits[i*itemsize:(i+1)*itemsize], got[i], math.Float32bits(got[i]), w, math.Float32bits(w))
				}
			}
		})
	}
	// NaNs: the E4M3 NaN is S.1111.111, the E5M2 NaNs have exponent 31 and a mantissa.
	for _, v := range []struct {
		f    func(uint8) float32
		bits uint8
	}{{convert.Float8E4M3To32, 0x7f}, {convert.Float8E4M3To32, 0xff}, {convert.Float8E5M2To32, 0x7e}, {convert.Float8E5M2To32, 0xfd}} {
		if f := v.f(v.bits); !math.IsNaN(float64(f)) {
			t.Errorf("%#02x: %g, want NaN", v.bits, f)
		}
	}
}

func TestMatch(t *testing.T) {
	good := stFile(nil, stTensor{"a", "F32", []int64{1}, le[float32](1)})
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"safetensors", good, true},
		{"length past the end (truncated)", append(binary8(1<<20), '{'), true},
		{"length over 32 bits", append(binary8(1<<40), '{'), false},
		{"no brace", append(binary8(2), '[', ']'), false},
		{"json text", []byte(`{"a": 1}`), false},
		{"too short", []byte{2, 0, 0}, false},
	} {
		src := memSource("x", c.data)
		head := make([]byte, min(src.Size(), convert.HeadSize))
		src.ReadAt(head, 0)
		if got := match(src, head); got != c.want {
			t.Errorf("%s: match = %v, want %v", c.name, got, c.want)
		}
	}
}

func binary8(n uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	return b
}

func TestHostileInputs(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			err := converttest.OpenAndReadAll(memSource("h.safetensors", c.data), "auto", convert.Limits{})
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("want ErrInvalid with %q, got %v", c.msg, err)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	b := stFile(nil, stTensor{"a", "F32", []int64{1}, le[float32](1)})
	_, err := Open(context.Background(), memSource("x", b), convert.Limits{MaxHeaderBytes: 16})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "over the limit of 16") {
		t.Fatalf("got %v", err)
	}
	_, err = Open(context.Background(), memSource("x", stFile(nil, allDTypes()...)), convert.Limits{MaxTensors: 3})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "more than 3 tensors") {
		t.Fatalf("got %v", err)
	}
}

// Every prefix of a valid file is refused, at Open or while streaming.
func TestTruncatedFilesAreInvalid(t *testing.T) {
	full := stFile(map[string]string{"format": "pt"}, allDTypes()...)
	for n := 0; n < len(full); n++ {
		if err := converttest.OpenAndReadAll(memSource("t.safetensors", full[:n]), "auto", convert.Limits{}); !errors.Is(err, convert.ErrInvalid) {
			t.Fatalf("cut at %d of %d bytes: want ErrInvalid, got %v", n, len(full), err)
		}
	}
}

func TestHostileFilesUpToDate(t *testing.T) {
	for _, c := range hostileCases() {
		if c.export {
			converttest.HostileFileUpToDate(t, c.file, c.data, c.msg)
		}
	}
}

// shardedFiles is a two-shard checkpoint and its index.
func shardedFiles(index string) map[string][]byte {
	return map[string][]byte{
		"model-00001-of-00002.safetensors": stFile(map[string]string{"format": "pt"},
			stTensor{"embed.weight", "F32", []int64{2, 2}, le[float32](1, 2, 3, 4)},
			stTensor{"layers.0.weight", "BF16", []int64{2}, le[uint16](0x3f80, 0x4000)},
			stTensor{"layers.0.scales", "F8_E8M0", []int64{1}, []byte{127}},
		),
		"model-00002-of-00002.safetensors": stFile(map[string]string{"format": "pt"},
			stTensor{"lm_head.weight", "F16", []int64{3}, le[uint16](0x3c00, 0x4000, 0x4200)},
			stTensor{"layers.1.weight", "I8", []int64{2}, []byte{1, 0xff}},
		),
		"model.safetensors.index.json": []byte(index),
	}
}

const goodIndex = `{
  "metadata": {"total_size": 27},
  "weight_map": {
    "embed.weight": "model-00001-of-00002.safetensors",
    "layers.0.scales": "model-00001-of-00002.safetensors",
    "layers.0.weight": "model-00001-of-00002.safetensors",
    "layers.1.weight": "model-00002-of-00002.safetensors",
    "lm_head.weight": "model-00002-of-00002.safetensors"
  }
}`

func indexSource(files map[string][]byte) *mem {
	m := memSource("model.safetensors.index.json", files["model.safetensors.index.json"])
	m.files = files
	return m
}

func TestShardedCheckpoint(t *testing.T) {
	files := shardedFiles(goodIndex)
	ck, err := convert.Open(context.Background(), indexSource(files), "auto", convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	info := ck.Info()
	var got []string
	for _, tn := range info.Tensors {
		got = append(got, tn.Name)
	}
	// Shards in file order, tensors in data order within each.
	if want := "[embed.weight layers.0.weight lm_head.weight layers.1.weight]"; fmt.Sprint(got) != want {
		t.Fatalf("tensors %v, want %s", got, want)
	}
	if len(info.Skipped) != 1 || info.Skipped[0].Name != "layers.0.scales" {
		t.Errorf("skipped %v", info.Skipped)
	}
	if info.Format != "safetensors" || fmt.Sprint(info.Metadata) != "map[format:pt total_size:27]" {
		t.Errorf("format %q metadata %v", info.Format, info.Metadata)
	}
	want := [][]byte{le[float32](1, 2, 3, 4), le[uint16](0x3f80, 0x4000), le[uint16](0x3c00, 0x4000, 0x4200), {1, 0xff}}
	// Out of order, back and forth between shards, and concurrently.
	for _, i := range []int{3, 0, 2, 1, 0} {
		if b := converttest.Values(t, ck, i); !bytes.Equal(b, want[i]) {
			t.Errorf("%s: % x, want % x", info.Tensors[i].Name, b, want[i])
		}
	}
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		for i := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc, err := ck.Values(context.Background(), i)
				if err != nil {
					t.Error(err)
					return
				}
				defer rc.Close()
				if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, want[i]) {
					t.Errorf("concurrent %d: % x %v", i, b, err)
				}
			}()
		}
	}
	wg.Wait()
}

func TestShardedIndexChecked(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(goodIndex, old, new, 1) }
	for _, c := range []struct {
		name   string
		index  string
		remove string
		msg    string
	}{
		{"missing shard", goodIndex, "model-00002-of-00002.safetensors", `shard "model-00002-of-00002.safetensors" listed in the index is missing`},
		{"tensor not in its shard", replace(`"embed.weight"`, `"embed.weights"`), "", `maps tensor "embed.weights" to "model-00001-of-00002.safetensors", which does not hold it`},
		{"shard holds an unlisted tensor", replace(`    "lm_head.weight": "model-00002-of-00002.safetensors"`, `    "extra": "model-00002-of-00002.safetensors"`)[0:0] + strings.Replace(goodIndex, `,
    "lm_head.weight": "model-00002-of-00002.safetensors"`, "", 1), "", `holds tensor "lm_head.weight", which the index does not assign to it`},
		{"tensor in the wrong shard", replace(`"lm_head.weight": "model-00002-of-00002.safetensors"`, `"lm_head.weight": "model-00001-of-00002.safetensors"`), "", "which does not hold it"},
		{"escaping shard name", replace(`"embed.weight": "model-00001-of-00002.safetensors"`, `"embed.weight": "../model-00001-of-00002.safetensors"`), "", "not a plain relative path"},
		{"absolute shard name", replace(`"embed.weight": "model-00001-of-00002.safetensors"`, `"embed.weight": "/etc/model-00001-of-00002.safetensors"`), "", "not a relative path"},
		{"duplicate tensor", replace(`"embed.weight": "model-00001-of-00002.safetensors",`, `"embed.weight": "model-00001-of-00002.safetensors", "embed.weight": "model-00001-of-00002.safetensors",`), "", "lists tensor \"embed.weight\" twice"},
		{"bad JSON", goodIndex[:len(goodIndex)-3], "", "not valid JSON"},
		{"empty weight_map", `{"weight_map": {}, "x": ".safetensors"}`, "", "lists no tensors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := shardedFiles(c.index)
			delete(files, c.remove)
			err := converttest.OpenAndReadAll(indexSource(files), "auto", convert.Limits{})
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("want ErrInvalid with %q, got %v", c.msg, err)
			}
		})
	}
}

// A PyTorch index (.bin shards) is not a safetensors checkpoint.
func TestPyTorchIndexNotMatched(t *testing.T) {
	idx := []byte(`{"metadata": {}, "weight_map": {"a": "pytorch_model-00001-of-00001.bin"}}`)
	src := memSource("pytorch_model.bin.index.json", idx)
	if match(src, idx) {
		t.Fatal("matched a .bin index")
	}
}

func TestFixtureFilesUpToDate(t *testing.T) {
	want := map[string][]byte{"all_dtypes.safetensors": stFile(map[string]string{"format": "pt"}, allDTypes()...)}
	for name, b := range shardedFiles(goodIndex) {
		want[filepath.Join("sharded", name)] = b
	}
	for name, b := range want {
		path := filepath.Join("testdata", name)
		if os.Getenv("CKPT2CSV_WRITE_FIXTURES") != "" {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is missing or stale (%v): run with CKPT2CSV_WRITE_FIXTURES=1", path, err)
		}
	}
	// The committed files open from disk, the sharded one through its index.
	ck, err := converttest.Open(t, "testdata/sharded/model.safetensors.index.json")
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if n := len(ck.Info().Tensors); n != 4 {
		t.Fatalf("%d tensors", n)
	}
	for i := range ck.Info().Tensors {
		converttest.Values(t, ck, i)
	}
}
