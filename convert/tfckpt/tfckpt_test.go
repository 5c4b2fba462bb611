// Tests for the TF bundle reader: bundles built from the spec (builder_test.go)
// and cross-checked with goleveldb, the real TF2 checkpoint, directory
// resolution, corrupt and hostile bundles.
package tfckpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/table"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// le packs values little-endian.
func le(vals ...any) []byte {
	var buf bytes.Buffer
	for _, v := range vals {
		binary.Write(&buf, binary.LittleEndian, v)
	}
	return buf.Bytes()
}

func f32s(n int, seed float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(math.Sin(seed+float64(i)) * 3)
	}
	return out
}

// allTypes is a bundle with every exported dtype, every skipped kind, a
// partitioned variable, optimizer slots, two shards and padding, spread over
// many small data blocks with restart points every 3 entries.
func allTypes() bundle {
	nan := math.Float32frombits(0x7fc00001) // a NaN with payload: hashed canonical
	return bundle{
		shards: 2, align: 8,
		table: tableOptions{blockSize: 96, restartInterval: 3},
		specs: []spec{
			{key: "_CHECKPOINTABLE_OBJECT_GRAPH", dtype: 7, shape: []int64{}, data: []byte("\x0a\x03obj")},
			{key: "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", dtype: 1, shape: []int64{4, 3}, data: le(f32s(12, 1))},
			{key: "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE", dtype: 1, shape: []int64{3}, data: le([]float32{0.5, nan, -1}), shard: 1},
			{key: "layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", dtype: 1, shape: []int64{4, 3}, data: le(f32s(12, 7))},
			{key: "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", dtype: 9, shape: []int64{}, data: le(int64(1500))},
			{key: "save_counter/.ATTRIBUTES/VARIABLE_VALUE", dtype: 9, shape: []int64{}, data: le(int64(1)), shard: 1},
			{key: "t/double", dtype: 2, shape: []int64{2}, data: le([]float64{math.Pi, -0.0})},
			{key: "t/int32", dtype: 3, shape: []int64{3}, data: le([]int32{math.MinInt32, -1, math.MaxInt32})},
			{key: "t/uint8", dtype: 4, shape: []int64{2, 2}, data: []byte{0, 1, 128, 255}},
			{key: "t/int16", dtype: 5, shape: []int64{2}, data: le([]int16{-32768, 32767})},
			{key: "t/int8", dtype: 6, shape: []int64{3}, data: []byte{0x80, 0xff, 0x7f}},
			{key: "t/bool", dtype: 10, shape: []int64{3}, data: []byte{1, 0, 1}},
			{key: "t/qint8", dtype: 11, shape: []int64{2}, data: []byte{0x80, 0x05}},
			{key: "t/bfloat16", dtype: 14, shape: []int64{3}, data: le([]uint16{0x3f80, 0xc040, 0x7f80})},
			{key: "t/uint16", dtype: 17, shape: []int64{2}, data: le([]uint16{0, 65535})},
			{key: "t/half", dtype: 19, shape: []int64{3}, data: le([]uint16{0x3c00, 0xfbff, 0x0001})},
			{key: "t/uint32", dtype: 22, shape: []int64{1}, data: le([]uint32{math.MaxUint32})},
			{key: "t/uint64", dtype: 23, shape: []int64{1}, data: le([]uint64{math.MaxUint64})},
			{key: "t/f8e5m2", dtype: 24, shape: []int64{4}, data: []byte{0x3c, 0xbc, 0x7c, 0x01}},
			{key: "t/f8e4m3fn", dtype: 25, shape: []int64{4}, data: []byte{0x38, 0xb8, 0x7e, 0x01}},
			{key: "t/empty", dtype: 1, shape: []int64{0, 5}, data: nil},
			{key: "t/complex64", dtype: 8, shape: []int64{1}, data: le([]float32{1, 2})},
			{key: "t/variant", dtype: 21, shape: []int64{}, data: []byte{1, 2, 3}},
			{key: "t/resource", dtype: 20, shape: []int64{}, data: nil},
			{key: "t/int4", dtype: 29, shape: []int64{2}, data: []byte{1, 2}},
			{key: "partitioned/w", dtype: 1, shape: []int64{4, 2}, slices: 2},
			{key: "global_step", dtype: 9, shape: []int64{}, data: le(int64(42))},
		},
		// the slices of partitioned/w, under OrderedCode keys (leading 0x00)
		rawSlices: [][2]string{{"\x00\x01partitioned/w\x00\x01\x02", "\x08\x01"}, {"\x00\x01partitioned/w\x00\x01\x03", "\x08\x01"}},
	}
}

var wantDTypes = map[int]convert.DType{
	1: convert.Float32, 2: convert.Float64, 3: convert.Int32, 4: convert.Uint8, 5: convert.Int16, 6: convert.Int8,
	9: convert.Int64, 10: convert.Bool, 11: convert.Int8, 14: convert.BFloat16, 17: convert.Uint16, 19: convert.Float16,
	22: convert.Uint32, 23: convert.Uint64, 24: convert.Float8E5M2, 25: convert.Float8E4M3,
}

var wantSkipped = map[string]string{
	"_CHECKPOINTABLE_OBJECT_GRAPH": "DT_STRING is not exported",
	"t/complex64":                  "DT_COMPLEX64 is not exported",
	"t/variant":                    "DT_VARIANT is not exported",
	"t/resource":                   "DT_RESOURCE is not exported",
	"t/int4":                       "DT_INT4 is not exported",
	"partitioned/w":                "partitioned variable saved as 2 slices is not exported",
}

func openIndex(t testing.TB, path string) convert.Checkpoint {
	t.Helper()
	src := converttest.OpenFile(t, path)
	f, err := convert.Detect(src)
	if err != nil || f.Name != "tf" {
		t.Fatalf("%s: detected as %q (%v), want tf", path, f.Name, err)
	}
	ck, err := Open(context.Background(), src, convert.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func readAll(ck convert.Checkpoint, i int) ([]byte, error) {
	rc, err := ck.Values(context.Background(), i)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Every exported dtype streams bit for bit, in key order, with TF2 keys
// split into layer and param; every unexported kind is skipped with a reason.
func TestBundleRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		big  bool
	}{{"little-endian", false}, {"big-endian", true}} {
		t.Run(tc.name, func(t *testing.T) {
			bd := allTypes()
			bd.big = tc.big
			want := map[string]spec{}
			for i, s := range bd.specs {
				want[s.key] = s
				if tc.big { // stored bytes are big-endian; streamed values stay little-endian
					if size := wantDTypes[s.dtype].Size(); size > 1 {
						d := append([]byte{}, s.data...)
						for o := 0; o+size <= len(d); o += size {
							for a, b := o, o+size-1; a < b; a, b = a+1, b-1 {
								d[a], d[b] = d[b], d[a]
							}
						}
						bd.specs[i].data = d
					}
				}
			}
			ck := openIndex(t, bd.write(t, t.TempDir(), "ckpt-7"))
			info := ck.Info()
			var keys []string
			for k, s := range want {
				if _, skip := wantSkipped[k]; !skip && s.dtype != 0 {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			var got []string
			for i, tn := range info.Tensors {
				got = append(got, tn.Name)
				s := want[tn.Name]
				if tn.DType != wantDTypes[s.dtype] || !reflect.DeepEqual(tn.Shape, s.shape) {
					t.Errorf("%s: %s %v, want %s %v", tn.Name, tn.DType, tn.Shape, wantDTypes[s.dtype], s.shape)
				}
				b, err := readAll(ck, i)
				if err != nil {
					t.Fatalf("%s: %v", tn.Name, err)
				}
				if converttest.SHA256(tn.DType, b) != converttest.SHA256(tn.DType, s.data) {
					t.Errorf("%s: values %x, want %x", tn.Name, b, s.data)
				}
			}
			if !reflect.DeepEqual(got, keys) {
				t.Errorf("tensors\n got %q\nwant %q", got, keys)
			}
			skipped := map[string]string{}
			for _, s := range info.Skipped {
				skipped[s.Name] = s.Reason
			}
			if !reflect.DeepEqual(skipped, wantSkipped) {
				t.Errorf("skipped %v, want %v", skipped, wantSkipped)
			}
			end := "little"
			if tc.big {
				end = "big"
			}
			if info.Metadata["num_shards"] != 2 || info.Metadata["endianness"] != end || info.Metadata["slice_entries"] != 2 {
				t.Errorf("metadata %v", info.Metadata)
			}
		})
	}
}

func TestSplitKeyDropsObjectSuffix(t *testing.T) {
	for key, want := range map[string][2]string{
		"layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE":                             {"layer_with_weights-0", "kernel"},
		"layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE": {"layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer", "m"},
		"save_counter/.ATTRIBUTES/VARIABLE_VALUE":                                            {"", "save_counter"},
		"dense/kernel": {"dense", "kernel"},
		"global_step":  {"", "global_step"},
		"model/layer_with_weights-1/embeddings/.ATTRIBUTES/VARIABLE_VALUE": {"model/layer_with_weights-1", "embeddings"},
	} {
		if l, p := SplitKey(key); l != want[0] || p != want[1] {
			t.Errorf("SplitKey(%q) = %q, %q; want %q, %q", key, l, p, want[0], want[1])
		}
	}
}

// The test writer's tables read back identically through goleveldb's own
// table reader (block checksums verified), and through ours.
func TestBuilderTablesReadByGoleveldb(t *testing.T) {
	for _, o := range []tableOptions{{}, {blockSize: 64, restartInterval: 1}, {blockSize: 96, restartInterval: 3}, {blockSize: 1, restartInterval: 2}} {
		bd := allTypes()
		bd.table = o
		path := bd.write(t, t.TempDir(), "x")
		b, _ := os.ReadFile(path)
		r, err := table.NewReader(bytes.NewReader(b), int64(len(b)), storage.FileDesc{}, nil, nil, &opt.Options{Strict: opt.StrictAll})
		if err != nil {
			t.Fatal(err)
		}
		var theirs []kv
		it := r.NewIterator(nil, nil)
		for it.Next() {
			theirs = append(theirs, kv{append([]byte{}, it.Key()...), append([]byte{}, it.Value()...)})
		}
		if err := it.Error(); err != nil {
			t.Fatalf("goleveldb: %v", err)
		}
		it.Release()
		ours, err := readTable(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(theirs) != len(bd.specs)+len(bd.rawSlices)+1 || !reflect.DeepEqual(ours, theirs) {
			t.Errorf("options %+v: goleveldb read %d entries, we read %d, differing", o, len(theirs), len(ours))
		}
	}
}

// The real TF2 checkpoint (tf.keras ModelCheckpoint, save_weights_only): the
// directory resolves to cp-0000.ckpt.index (the state file names cp-0050,
// which is absent), and every tensor is bit-exact, under its checkpoint key.
func TestRealKerasCheckpoint(t *testing.T) {
	dir, exp := converttest.Real(t, "tfck_nighthawks_cp0")
	key, err := ResolveDir(context.Background(), listDir(dir), readKey(dir))
	if err != nil || key != "cp-0000.ckpt.index" {
		t.Fatalf("ResolveDir = %q, %v", key, err)
	}
	ck := openIndex(t, filepath.Join(dir, key))
	info := ck.Info()
	converttest.MatchTensors(t, ck, exp.Tensors)
	for _, tn := range info.Tensors {
		if l, p := SplitKey(tn.Name); tn.Layer != l || tn.Param != p || !strings.HasPrefix(l, "layer_with_weights-") {
			t.Errorf("%s: layer/param %q/%q", tn.Name, tn.Layer, tn.Param)
		}
	}
	if len(info.Skipped) != 1 || info.Skipped[0].Name != "_CHECKPOINTABLE_OBJECT_GRAPH" {
		t.Errorf("skipped %v", info.Skipped)
	}
	if info.Metadata["num_shards"] != 1 || info.Metadata["endianness"] != "little" {
		t.Errorf("metadata %v", info.Metadata)
	}
}

func listDir(dir string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) {
		var keys []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				keys = append(keys, filepath.ToSlash(rel))
			}
			return err
		})
		return keys, err
	}
}

func readKey(dir string) func(context.Context, string) ([]byte, error) {
	return func(_ context.Context, key string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	}
}

func TestResolveDir(t *testing.T) {
	state := func(latest string, all ...string) string {
		s := "model_checkpoint_path: \"" + latest + "\"\n"
		for _, a := range all {
			s += "all_model_checkpoint_paths: \"" + a + "\"\n"
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" means an ErrInvalid containing err
		err   string
	}{
		{"saved model", map[string]string{"saved_model.pb": "", "variables/variables.index": "", "variables/variables.data-00000-of-00001": "", "assets/x.index": ""}, "variables/variables.index", ""},
		{"state names latest", map[string]string{"checkpoint": state("ckpt-3", "ckpt-2", "ckpt-3"), "ckpt-2.index": "", "ckpt-3.index": ""}, "ckpt-3.index", ""},
		{"latest gone, newest kept", map[string]string{"checkpoint": state("ckpt-9", "ckpt-1", "ckpt-2", "ckpt-9"), "ckpt-1.index": "", "ckpt-2.index": ""}, "ckpt-2.index", ""},
		{"absolute paths from training", map[string]string{"checkpoint": state("/home/u/run/model.ckpt-100"), "model.ckpt-100.index": "", "model.ckpt-50.index": ""}, "model.ckpt-100.index", ""},
		{"state names nothing present", map[string]string{"checkpoint": state("cp-0050.ckpt"), "cp-0000.ckpt.index": ""}, "cp-0000.ckpt.index", ""},
		{"under a key prefix", map[string]string{"runs/a/checkpoint": state("ckpt-1"), "runs/a/ckpt-1.index": ""}, "runs/a/ckpt-1.index", ""},
		{"ambiguous", map[string]string{"a.index": "", "b.index": ""}, "", "several TensorFlow checkpoints"},
		{"empty", map[string]string{"README": ""}, "", "no TensorFlow checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := func(context.Context) ([]string, error) {
				var keys []string
				for k := range tc.files {
					keys = append(keys, k)
				}
				return keys, nil
			}
			read := func(_ context.Context, k string) ([]byte, error) { return []byte(tc.files[k]), nil }
			got, err := ResolveDir(context.Background(), list, read)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Errorf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %q, %v; want an error containing %q", got, err, tc.err)
			}
		})
	}
}

// invalidCase builds a bundle that must fail with a message containing msg,
// at Open or while streaming.
type invalidCase struct {
	name string
	bd   bundle
	msg  string
	// file is the hostile corpus name ("" when the case is tested here only)
	file string
}

func invalidCases() []invalidCase {
	one := func(s spec) bundle { return bundle{specs: []spec{s}} }
	w := spec{key: "dense/kernel", dtype: 1, shape: []int64{2, 2}, data: le(f32s(4, 0))}
	bad := w
	bad.badCRC = true
	past := w
	past.fixOff, past.off = true, 1<<20
	short := w
	short.fixLen, short.size = true, 12
	far := w
	far.shard = 3
	huge := w
	huge.shape = []int64{1 << 40, 1 << 40}
	negdim := w
	negdim.shape = []int64{-1, 4}
	return []invalidCase{
		{"bad crc", one(bad), "data fails its crc32c check", "tf-bad-crc"},
		{"data past the data file", one(past), "past the end of", "tf-data-past-eof"},
		{"size disagrees with shape", one(short), "entry says 12 bytes, shape [2 2] of float32 needs 16", "tf-size-mismatch"},
		{"shard out of range", bundle{shards: 1, specs: []spec{far}}, "shard 3, but the bundle has 1", "tf-shard-out-of-range"},
		{"overflowing shape", one(huge), "too many elements", ""},
		{"unknown dimension", one(negdim), "unknown dimension", ""},
		{"block checksum", bundle{specs: []spec{w}, table: tableOptions{corruptBlock: 1}}, "fails its checksum", "tf-index-checksum"},
		{"compressed block", bundle{specs: []spec{w}, table: tableOptions{blockType: 1}}, "is compressed", ""},
		{"no shards", bundle{specs: []spec{w}, header: encodeHeader(0, false)}, "0 shards", ""},
		{"newer bundle version", bundle{specs: []spec{w}, header: append(encodeHeader(1, false)[:2], 0x1a, 0x02, 0x10, 0x05)}, "needs a reader of version 5", ""},
		{"header field of the wrong type", bundle{specs: []spec{w}, header: []byte{0x0d, 1, 0, 0, 0}}, "wire type", ""},
	}
}

func TestInvalidBundlesFailCleanly(t *testing.T) {
	for _, tc := range invalidCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.bd.write(t, t.TempDir(), "ckpt")
			err := openAndReadAll(converttest.OpenFile(t, path))
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want ErrInvalid with %q", err, tc.msg)
			}
		})
	}
}

// A consumer that reads exactly the expected number of bytes (io.ReadFull)
// still sees a bad checksum.
func TestBadCRCSeenByExactReader(t *testing.T) {
	bd := allTypes()
	bd.specs[1].badCRC = true
	ck := openIndex(t, bd.write(t, t.TempDir(), "ckpt"))
	for i, tn := range ck.Info().Tensors {
		rc, err := ck.Values(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, tn.Numel()*int64(tn.DType.Size()))
		_, err = io.ReadFull(rc, buf)
		rc.Close()
		if bad := tn.Name == bd.specs[1].key; bad != errors.Is(err, convert.ErrInvalid) {
			t.Errorf("%s: error %v", tn.Name, err)
		}
	}
}

func TestMissingDataFileIsInvalid(t *testing.T) {
	bd := bundle{specs: []spec{{key: "w", dtype: 1, shape: []int64{1}, data: le(float32(1))}}}
	path := bd.write(t, t.TempDir(), "ckpt")
	os.Remove(strings.TrimSuffix(path, ".index") + ".data-00000-of-00001")
	err := openAndReadAll(converttest.OpenFile(t, path))
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "data file ckpt.data-00000-of-00001 is missing") {
		t.Fatalf("error %v", err)
	}
}

// Every prefix of an index is rejected cleanly (the footer is gone), and
// every single-byte corruption fails with ErrInvalid or still reads.
func TestCorruptIndexFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	path := allTypes().write(t, dir, "ckpt")
	b, _ := os.ReadFile(path)
	for n := range len(b) {
		if _, err := readTable(b[:n]); !errors.Is(err, convert.ErrInvalid) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
	for i := range b {
		c := append([]byte{}, b...)
		c[i] ^= 0x41
		if err := os.WriteFile(path, c, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := openAndReadAll(converttest.OpenFile(t, path)); err != nil && !errors.Is(err, convert.ErrInvalid) {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
}

func TestMatch(t *testing.T) {
	path := allTypes().write(t, t.TempDir(), "ckpt")
	b, _ := os.ReadFile(path)
	src := converttest.OpenFile(t, path)
	if !Match(src, b[:min(len(b), convert.HeadSize)]) {
		t.Error("bundle index not matched")
	}
	data := converttest.OpenFile(t, strings.TrimSuffix(path, ".index")+".data-00000-of-00002")
	head := make([]byte, min(data.Size(), convert.HeadSize))
	data.ReadAt(head, 0)
	if Match(data, head) {
		t.Error("data shard matched")
	}
	cut := filepath.Join(t.TempDir(), "cut.index") // lost its footer: still ours, to say so
	os.WriteFile(cut, b[:len(b)-20], 0o644)
	if !Match(converttest.OpenFile(t, cut), b[:min(len(b)-20, convert.HeadSize)]) {
		t.Error("index cut short not matched")
	}
	err := openAndReadAll(converttest.OpenFile(t, cut))
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "footer") {
		t.Errorf("index cut short: %v", err)
	}
}

func openAndReadAll(src convert.Source) error {
	ck, err := Open(context.Background(), src, convert.Limits{})
	if err != nil {
		return err
	}
	defer ck.Close()
	return converttest.ReadAll(ck)
}

// Hostile corpus: each testdata/hostile/tf-* case fails as its .err says.
// Regenerate with CKPT2CSV_WRITE_HOSTILE=1.
func TestHostileCorpus(t *testing.T) {
	dir := converttest.HostileDir()
	for _, tc := range invalidCases() {
		if tc.file == "" {
			continue
		}
		t.Run(tc.file, func(t *testing.T) {
			index := filepath.Join(dir, tc.file+".index")
			if os.Getenv("CKPT2CSV_WRITE_HOSTILE") != "" {
				tc.bd.write(t, dir, tc.file)
				writeErr(t, index, tc.msg)
				// a data shard named on its own is not a checkpoint
				for _, d := range converttest.HostileFiles(t, tc.file+".data-*") {
					writeErr(t, d, "unrecognised checkpoint format")
				}
				if tc.file == "tf-index-checksum" || tc.file == "tf-size-mismatch" || tc.file == "tf-shard-out-of-range" {
					for _, d := range converttest.HostileFiles(t, tc.file+".data-*") { // single-file cases: the index alone fails
						os.Remove(d)
						os.Remove(d + ".err")
					}
				}
			}
			converttest.CheckRefused(t, index, openAndReadAll(converttest.OpenFile(t, index)))
		})
	}
}

func writeErr(t *testing.T, path, msg string) {
	if err := os.WriteFile(path+".err", []byte(msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkValues streams a 64 MiB float32 tensor, CRC-32C checked.
func BenchmarkValues(b *testing.B) {
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	bd := bundle{specs: []spec{{key: "big", dtype: 1, shape: []int64{int64(len(data) / 4)}, data: data}}}
	ck := openIndex(b, bd.write(b, b.TempDir(), "ckpt"))
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, err := ck.Values(context.Background(), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
