// Tests for the ONNX reader: fixtures written by onnx (testdata/generate.py)
// compared bit for bit with numpy_helper's values, the real PyTorch export,
// hostile models, truncation, limits and bounded memory.
package onnx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	"ckpt2csv/convert/onnx"
)

type expectedModel struct {
	converttest.Fixture
	Metadata map[string]any `json:"metadata"`
}

func openONNX(t testing.TB, path string) convert.Checkpoint {
	t.Helper()
	src := converttest.OpenFile(t, path)
	f, err := convert.Detect(src)
	if err != nil || f.Name != "onnx" {
		t.Fatalf("%s: detected as %q (%v), want onnx", path, f.Name, err)
	}
	ck, err := onnx.Open(context.Background(), src, convert.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

// Every fixture lists exactly the tensors the generator recorded, in file
// order, with values bit-identical to what onnx.numpy_helper read.
func TestFixturesMatchFramework(t *testing.T) {
	var exp map[string]expectedModel
	converttest.LoadJSON(t, "testdata/expected.json", &exp)
	if len(exp) < 8 {
		t.Fatalf("expected.json lists %d models", len(exp))
	}
	for file, want := range exp {
		t.Run(file, func(t *testing.T) {
			ck := openONNX(t, filepath.Join("testdata", file))
			info := ck.Info()
			if info.Format != "onnx" {
				t.Errorf("format %q", info.Format)
			}
			converttest.MatchTensors(t, ck, want.Tensors)
			for _, tn := range info.Tensors {
				if tn.Layer != "" || tn.Param != "" {
					t.Errorf("%s: layer/param %q/%q, want both empty (split at '.')", tn.Name, tn.Layer, tn.Param)
				}
			}
			converttest.MatchSkipped(t, info.Skipped, want.Skipped)
			for k, v := range want.Metadata {
				got, _ := json.Marshal(info.Metadata[k])
				w, _ := json.Marshal(v)
				if string(got) != string(w) {
					t.Errorf("metadata %s = %s, want %s", k, got, w)
				}
			}
		})
	}
}

func TestMetadataKeepsOpsetsAndProps(t *testing.T) {
	ck := openONNX(t, "testdata/raw.onnx")
	md := ck.Info().Metadata
	ops, _ := json.Marshal(md["opset_import"])
	if string(ops) != `[{"domain":"","version":13}]` {
		t.Errorf("opset_import %s", ops)
	}
	if props, _ := md["metadata_props"].(map[string]string); props["author"] != "tests" {
		t.Errorf("metadata_props %v", md["metadata_props"])
	}
	if md["producer_version"] != "1" {
		t.Errorf("producer_version %v", md["producer_version"])
	}
}

// The real PyTorch export: names are the initializer names, identical to
// the ground truth's; every value bit-exact.
func TestRealPyTorchExport(t *testing.T) {
	path, exp := converttest.Real(t, "onnx_houseprice_mlp")
	ck := openONNX(t, path)
	info := ck.Info()
	byName := map[string]int{}
	for i, tn := range info.Tensors {
		byName[tn.Name] = i
	}
	if len(info.Tensors) != len(exp.Tensors) {
		t.Errorf("%d tensors, want %d", len(info.Tensors), len(exp.Tensors))
	}
	for _, w := range exp.Tensors {
		i, ok := byName[w.Name]
		if !ok {
			t.Errorf("missing %s", w.Name)
			continue
		}
		converttest.MatchTensor(t, ck, i, w)
		tn := info.Tensors[i]
		if tn.LayerType != "Gemm" {
			t.Errorf("%s: layer type %q, want Gemm", w.Name, tn.LayerType)
		}
	}
	if info.Metadata["producer_name"] != "pytorch" || info.Metadata["ir_version"] != int64(7) {
		t.Errorf("metadata %v", info.Metadata)
	}
}

// Each hostile model fails with ErrInvalid and the message its .err names.
func TestHostileModelsFailCleanly(t *testing.T) {
	files := converttest.HostileFiles(t, "onnx-*.onnx")
	if len(files) < 7 {
		t.Fatalf("found %d hostile onnx files", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			err := converttest.OpenAndReadAll(converttest.OpenFile(t, path), "auto", convert.Limits{}.Defaults())
			converttest.CheckRefused(t, path, err)
		})
	}
}

func TestMissingExternalFileIsInvalid(t *testing.T) {
	b, err := os.ReadFile("testdata/external.onnx")
	if err != nil {
		t.Fatal(err)
	}
	src := &converttest.Mem{Path: "m/external.onnx", Data: b} // no siblings
	_, err = onnx.Open(context.Background(), src, convert.Limits{})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), `"weights/external.bin" is missing`) {
		t.Fatalf("error %v", err)
	}
}

// A storage error from a sibling stays retryable: not ErrInvalid.
func TestExternalIOErrorIsNotInvalid(t *testing.T) {
	b, _ := os.ReadFile("testdata/external.onnx")
	src := &converttest.Mem{Path: "m/external.onnx", Data: b, SiblingErr: errors.New("connection reset")}
	_, err := onnx.Open(context.Background(), src, convert.Limits{})
	if err == nil || errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("error %v", err)
	}
}

func TestMatchRejectsOtherFiles(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":       {},
		"text":        []byte("hello world, not a model"),
		"safetensors": append([]byte{0x08, 0x04, 0, 0, 0, 0, 0, 0}, []byte(`{"a":{}}`)...),
		"zero ir":     {0x08, 0x00, 0x12, 0x01, 'x'},
		"bad type":    {0x08, 0x07, 0x3d, 0, 0, 0, 0}, // graph as fixed32
		"no graph":    {0x08, 0x07, 0x28, 0x01},
	} {
		if onnx.Match(&converttest.Mem{Data: b}, b) {
			t.Errorf("%s matched", name)
		}
	}
	b, _ := os.ReadFile("testdata/raw.onnx")
	if !onnx.Match(&converttest.Mem{Data: b}, b[:min(len(b), convert.HeadSize)]) {
		t.Error("raw.onnx not matched")
	}
}

// Every prefix of a model either opens and streams, or fails with ErrInvalid: never a panic.
func TestEveryTruncationFailsCleanly(t *testing.T) {
	for _, file := range []string{"raw.onnx", "unpacked.onnx", "constants.onnx", "sparse.onnx", "linear_classifier.onnx"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n < len(b); n++ {
			src := &converttest.Mem{Path: file, Data: b[:n]}
			ck, err := onnx.Open(context.Background(), src, convert.Limits{})
			if err != nil {
				if !errors.Is(err, convert.ErrInvalid) {
					t.Fatalf("%s[:%d]: %v is not ErrInvalid", file, n, err)
				}
				continue
			}
			for i := range ck.Info().Tensors {
				if rc, err := ck.Values(context.Background(), i); err == nil {
					_, err = io.Copy(io.Discard, rc)
					if err != nil && !errors.Is(err, convert.ErrInvalid) {
						t.Fatalf("%s[:%d] tensor %d: %v", file, n, i, err)
					}
				}
			}
		}
	}
}

// Sparse tensors that would expand far beyond their stored bytes are skipped.
func TestSparseBombIsSkipped(t *testing.T) {
	vals := tensor("bomb", 1, []int64{1}, raw(4))
	idx := tensor("", 7, []int64{1}, raw(8))
	sp := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), vals)
	sp = protowire.AppendBytes(protowire.AppendTag(sp, 2, protowire.BytesType), idx)
	sp = protowire.AppendBytes(protowire.AppendTag(sp, 3, protowire.BytesType), protowire.AppendVarint(protowire.AppendVarint(nil, 1<<20), 1<<20))
	graph := protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), sp)
	b := model(graph)
	ck, err := onnx.Open(context.Background(), &converttest.Mem{Data: b}, convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	info := ck.Info()
	if len(info.Tensors) != 0 || len(info.Skipped) != 1 || !strings.Contains(info.Skipped[0].Reason, "over the limit") {
		t.Fatalf("tensors %v skipped %v", info.Tensors, info.Skipped)
	}
}

func TestSparseIndicesMustAscend(t *testing.T) {
	vals := tensor("sp", 1, []int64{2}, raw(8))
	idx := tensor("", 7, []int64{2}, append(le64(3), le64(1)...))
	sp := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), vals)
	sp = protowire.AppendBytes(protowire.AppendTag(sp, 2, protowire.BytesType), idx)
	sp = protowire.AppendBytes(protowire.AppendTag(sp, 3, protowire.BytesType), protowire.AppendVarint(nil, 4))
	b := model(protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), sp))
	err := converttest.OpenAndReadAll(&converttest.Mem{Data: b}, "auto", convert.Limits{}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "ascending") {
		t.Fatalf("error %v", err)
	}
}

// Attributes of standard operators are exported only when the model keeps
// its weights nowhere else: a Constant node counts as such a place.
func TestConstantOnlyModelKeepsOperatorAttributesOut(t *testing.T) {
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), []byte(s))
	}
	msg := func(num protowire.Number, parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	f := protowire.AppendFixed32(protowire.AppendTag(nil, 2, protowire.Fixed32Type), 0x3f800000)
	constant := msg(1, str(2, "one"), str(4, "Constant"), msg(5, str(1, "value_float"), f))
	perm := protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), []byte{1, 0})
	transpose := msg(1, str(1, "one"), str(2, "t"), str(3, "tr"), str(4, "Transpose"), msg(5, str(1, "perm"), perm))
	ck, err := onnx.Open(context.Background(), &converttest.Mem{Data: model(append(constant, transpose...))}, convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	info := ck.Info()
	if len(info.Tensors) != 1 || info.Tensors[0].Name != "one" || info.Tensors[0].LayerType != "Transpose" {
		t.Fatalf("tensors %+v", info.Tensors)
	}
	if got := converttest.Values(t, ck, 0); !bytes.Equal(got, []byte{0, 0, 0x80, 0x3f}) {
		t.Errorf("values %x", got)
	}
}

// Deeply nested subgraphs are refused, not recursed into without end.
func TestSubgraphDepthIsBounded(t *testing.T) {
	g := []byte{}
	for range 100 {
		attr := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("body"))
		attr = protowire.AppendBytes(protowire.AppendTag(attr, 6, protowire.BytesType), g)
		node := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), attr)
		g = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), node)
	}
	_, err := onnx.Open(context.Background(), &converttest.Mem{Data: model(g)}, convert.Limits{})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("error %v", err)
	}
}

// A 64 MiB raw_data tensor and a 16 Mi-element packed float_data tensor open
// and stream with a few hundred KiB of allocation: nothing holds the model.
func TestLargeModelStreamsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 128 MiB model")
	}
	const n = 16 << 20
	path := filepath.Join(t.TempDir(), "big.onnx")
	payload := writeBigModel(t, path, n)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ck := openONNX(t, path)
	for i := range ck.Info().Tensors {
		rc, err := ck.Values(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		h := newHasher()
		if _, err := io.CopyBuffer(h, rc, make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if !bytes.Equal(h.sum(), sum(payload)) {
			t.Errorf("tensor %d: values differ", i)
		}
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("open + stream 2 x %d MiB: %d KiB allocated", len(payload)>>20, alloc>>10)
	if alloc > 4<<20 {
		t.Errorf("allocated %d bytes to stream %d", alloc, 2*len(payload))
	}
}

// writeBigModel writes a model with two float tensors of n values holding the
// same bytes: big_raw in raw_data and big_packed in packed float_data.
func writeBigModel(t testing.TB, path string, n int) []byte {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	payload := make([]byte, 4*n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	head := func(name string, field protowire.Number) []byte {
		b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(n))
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), 1)
		b = protowire.AppendBytes(protowire.AppendTag(b, 8, protowire.BytesType), []byte(name))
		return protowire.AppendVarint(protowire.AppendTag(b, field, protowire.BytesType), uint64(len(payload)))
	}
	rawHead, packedHead := head("big_raw", 9), head("big_packed", 4)
	init1 := protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.BytesType), uint64(len(rawHead)+len(payload)))
	init2 := protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.BytesType), uint64(len(packedHead)+len(payload)))
	glen := len(init1) + len(rawHead) + len(init2) + len(packedHead) + 2*len(payload)
	m := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 8)
	m = protowire.AppendVarint(protowire.AppendTag(m, 7, protowire.BytesType), uint64(glen))
	for _, part := range [][]byte{m, init1, rawHead, payload, init2, packedHead, payload} {
		if _, err := f.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	return payload
}

// BenchmarkValues streams a 16 MiB tensor from raw_data and from packed float_data.
func BenchmarkValues(b *testing.B) {
	const n = 4 << 20
	path := filepath.Join(b.TempDir(), "big.onnx")
	writeBigModel(b, path, n)
	ck := openONNX(b, path)
	for i, tn := range ck.Info().Tensors {
		b.Run(tn.Name, func(b *testing.B) {
			b.SetBytes(4 * n)
			buf := make([]byte, 32<<10)
			for b.Loop() {
				rc, err := ck.Values(context.Background(), i)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
