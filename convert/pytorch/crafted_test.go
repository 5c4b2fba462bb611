package pytorch

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// pk emits pickle opcodes for records torch 1.13 cannot write.
type pk struct{ b []byte }

func newPk() *pk                   { return &pk{b: []byte{0x80, 2}} }
func (p *pk) raw(s string) *pk     { p.b = append(p.b, s...); return p }
func (p *pk) glob(m, n string) *pk { return p.raw("c" + m + "\n" + n + "\n") }
func (p *pk) str(s string) *pk {
	p.b = append(p.b, 'X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	return p.raw(s)
}
func (p *pk) int(v int64) *pk {
	p.b = append(p.b, 'J')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	return p
}
func (p *pk) ints(vs ...int64) *pk {
	p.raw("(")
	for _, v := range vs {
		p.int(v)
	}
	return p.raw("t")
}

// storage pushes the persistent id of a storage.
func (p *pk) storage(typ, key string, numel int64) *pk {
	return p.raw("(").str("storage").glob("torch", typ).str(key).str("cpu").int(numel).raw("tQ")
}

// tensorV2 pushes _rebuild_tensor_v2(storage, off, shape, stride, False, OrderedDict()).
func (p *pk) tensorV2(typ, key string, numel, off int64, shape, stride []int64) *pk {
	p.glob("torch._utils", "_rebuild_tensor_v2").raw("(")
	p.storage(typ, key, numel).int(off).ints(shape...).ints(stride...)
	return p.raw("\x89").glob("collections", "OrderedDict").raw(")RtR")
}

func (p *pk) bytes() []byte { return append(p.b, '.') }

func f32s(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// torchZip writes a torch archive with the given data.pkl and storages.
func torchZip(t *testing.T, pkl []byte, data map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("archive/data.pkl", pkl)
	for k, v := range data {
		add("archive/data/"+k, v)
	}
	add("archive/version", []byte("3\n"))
	z.Close()
	p := filepath.Join(t.TempDir(), "crafted.pt")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openCrafted(t *testing.T, pkl []byte, data map[string][]byte) (convert.Checkpoint, error) {
	t.Helper()
	return Open(context.Background(), converttest.OpenFile(t, torchZip(t, pkl, data)), convert.Limits{}.Defaults())
}

func values(t *testing.T, ck convert.Checkpoint) map[string][]byte {
	out := map[string][]byte{}
	for i, tn := range ck.Info().Tensors {
		out[tn.Name] = converttest.Values(t, ck, i)
	}
	return out
}

// Rebuild records of newer torch versions and wrappers around them.
func TestRebuildRecords(t *testing.T) {
	six := f32s(0, 1, 2, 3, 4, 5)
	for _, tc := range []struct {
		name  string
		pkl   func(p *pk)
		shape []int64
		want  []byte
	}{
		{"parameter", func(p *pk) {
			p.glob("torch._utils", "_rebuild_parameter").raw("(").tensorV2("FloatStorage", "0", 6, 0, []int64{2, 3}, []int64{3, 1}).raw("\x88").glob("collections", "OrderedDict").raw(")RtR")
		}, []int64{2, 3}, six},
		{"parameter with state", func(p *pk) {
			p.glob("torch._utils", "_rebuild_parameter_with_state").raw("(").tensorV2("FloatStorage", "0", 6, 1, []int64{2}, []int64{2}).raw("\x88").glob("collections", "OrderedDict").raw(")R}tR")
		}, []int64{2}, f32s(1, 3)},
		{"from_type_v2 subclass", func(p *pk) {
			p.glob("torch._tensor", "_rebuild_from_type_v2").raw("(").glob("torch._utils", "_rebuild_tensor_v2").glob("mypkg", "MyTensor")
			p.raw("(").storage("FloatStorage", "0", 6).int(3).ints(3).ints(1).raw("\x89").glob("collections", "OrderedDict").raw(")Rt}tR")
		}, []int64{3}, f32s(3, 4, 5)},
		{"v1 rebuild_tensor", func(p *pk) {
			p.glob("torch._utils", "_rebuild_tensor").raw("(").storage("FloatStorage", "0", 6).int(0).ints(3, 2).ints(1, 3).raw("tR")
		}, []int64{3, 2}, f32s(0, 3, 1, 4, 2, 5)},
		{"torch.Size shape", func(p *pk) {
			p.glob("torch._utils", "_rebuild_tensor_v2").raw("(").storage("FloatStorage", "0", 6).int(0)
			p.glob("torch", "Size").raw("(").ints(6).raw("tR").ints(1).raw("\x89").glob("collections", "OrderedDict").raw(")RtR")
		}, []int64{6}, six},
		{"v3 untyped storage as float32", func(p *pk) {
			p.glob("torch._utils", "_rebuild_tensor_v3").raw("(").storage("UntypedStorage", "0", 24).int(2).ints(2, 2).ints(2, 1).raw("\x89").glob("collections", "OrderedDict").raw(")R").glob("torch", "float32").raw("tR")
		}, []int64{2, 2}, f32s(2, 3, 4, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPk().raw("}").str("w")
			tc.pkl(p)
			ck, err := openCrafted(t, p.raw("s").bytes(), map[string][]byte{"0": six})
			if err != nil {
				t.Fatal(err)
			}
			if got := ck.Info().Tensors[0].Shape; !reflect.DeepEqual(got, tc.shape) {
				t.Errorf("shape %v want %v", got, tc.shape)
			}
			if got := values(t, ck)["w"]; !bytes.Equal(got, tc.want) {
				t.Errorf("values %v want %v", got, tc.want)
			}
		})
	}
}

func TestUnexportableTensorsAreSkippedWithReasons(t *testing.T) {
	p := newPk().raw("}(")
	p.str("q").glob("torch._utils", "_rebuild_qtensor").raw("(").storage("QInt8Storage", "1", 2).raw("tR")
	p.str("sparse").glob("torch._utils", "_rebuild_sparse_tensor").raw("(").glob("torch", "sparse_coo").raw("tR")
	p.str("meta").glob("torch._utils", "_rebuild_meta_tensor_no_storage").raw("(").glob("torch", "float32").ints(2).ints(1).raw("tR")
	p.str("c").tensorV2("ComplexFloatStorage", "2", 1, 0, []int64{1}, []int64{1})
	p.str("ok").tensorV2("FloatStorage", "0", 1, 0, []int64{}, []int64{})
	ck, err := openCrafted(t, p.raw("u").bytes(), map[string][]byte{"0": f32s(1), "1": {1, 2}, "2": make([]byte, 8)})
	if err != nil {
		t.Fatal(err)
	}
	info := ck.Info()
	if len(info.Tensors) != 1 || info.Tensors[0].Name != "ok" {
		t.Fatalf("tensors %v", info.Tensors)
	}
	want := map[string]string{"q": "quantized", "sparse": "sparse", "meta": "meta", "c": "complex64"}
	for _, s := range info.Skipped {
		if !strings.Contains(s.Reason, want[s.Name]) {
			t.Errorf("%s: %q", s.Name, s.Reason)
		}
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Errorf("not skipped: %v", want)
	}
}

// A module object shared by two parents is exported under both names, as
// state_dict does; a module that holds itself terminates.
func TestSharedAndCyclicModules(t *testing.T) {
	p := newPk()
	// lin = Linear with weight; root = Net with _modules {a: lin, b: lin, self: root}
	p.glob("__main__", "Net").raw(")\x81q\x00}(")
	p.str("_parameters").glob("collections", "OrderedDict").raw(")R")
	p.str("_buffers").raw("}")
	p.str("_modules").glob("collections", "OrderedDict").raw(")R(")
	p.str("a").glob("torch.nn.modules.linear", "Linear").raw(")\x81q\x01}(")
	p.str("_parameters").raw("}").str("weight").tensorV2("FloatStorage", "0", 2, 0, []int64{2}, []int64{1}).raw("s")
	p.str("_modules").raw("}").raw("ub")
	p.str("b").raw("h\x01")
	p.str("self").raw("h\x00")
	p.raw("uub")
	ck, err := openCrafted(t, p.bytes(), map[string][]byte{"0": f32s(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tn := range ck.Info().Tensors {
		names = append(names, tn.Name+":"+tn.LayerType)
	}
	if want := []string{"a.weight:Linear", "b.weight:Linear"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("got %v want %v", names, want)
	}
}

// What torch.save writes besides tensors in a state_dict: a storage saved
// on its own, a lazy module's uninitialized parameter, a bytes key (protocol 2
// pickles it as a _codecs.encode call), numpy's random state (skipped, as in
// scikit-learn pickles), an RNN module pickled whole (its _flat_weights list
// holds its parameters again).
func TestStoragesLazyParametersBytesKeysAndRNNs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pkl     func(p *pk)
		want    []string // name:shape
		skipped []string
	}{
		{"storage in a dict", func(p *pk) {
			p.raw("}(").str("st").storage("FloatStorage", "0", 3).str("w").tensorV2("FloatStorage", "0", 3, 1, []int64{2}, []int64{1}).raw("u")
		}, []string{"st:[3]", "w:[2]"}, nil},
		{"storage at the root", func(p *pk) { p.storage("FloatStorage", "0", 3) }, []string{"crafted:[3]"}, nil}, // a root tensor is named after the file
		{"uninitialized parameter", func(p *pk) {
			p.raw("}(").str("weight").glob("torch.nn.parameter", "UninitializedParameter").raw("\x88\x85R")
			p.str("bias").glob("torch.nn.parameter", "UninitializedBuffer").raw("\x88\x85R").raw("u")
		}, nil, []string{"weight", "bias"}},
		{"bytes key in protocol 2", func(p *pk) {
			p.raw("}").glob("_codecs", "encode").raw("(").str("bk").str("latin1").raw("tR").tensorV2("FloatStorage", "0", 3, 0, []int64{3}, []int64{1}).raw("s")
		}, []string{`b"bk":[3]`}, nil},
		{"numpy random state", func(p *pk) {
			p.raw("}").str("rng").glob("numpy.random._pickle", "__randomstate_ctor").raw("(").str("MT19937").raw("tR").raw("s")
		}, nil, []string{"rng"}},
		{"RNN module pickled whole", func(p *pk) {
			p.raw("}").str("rnn").glob("torch.nn.modules.rnn", "LSTM").raw(")\x81}(")
			p.str("_parameters").glob("collections", "OrderedDict").raw(")R(")
			p.str("weight_ih_l0").tensorV2("FloatStorage", "0", 3, 0, []int64{3}, []int64{1}).raw("q\x05u")
			p.str("_buffers").raw("}").str("_modules").raw("}")
			p.str("_flat_weights").raw("(h\x05l").raw("ubs")
		}, []string{"rnn.weight_ih_l0:[3]"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPk()
			tc.pkl(p)
			ck, err := openCrafted(t, p.bytes(), map[string][]byte{"0": f32s(1, 2, 3)})
			if err != nil {
				t.Fatal(err)
			}
			var got, skipped []string
			for _, tn := range ck.Info().Tensors {
				got = append(got, fmt.Sprintf("%s:%v", tn.Name, tn.Shape))
			}
			for _, s := range ck.Info().Skipped {
				skipped = append(skipped, s.Name)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(skipped, tc.skipped) {
				t.Fatalf("tensors %v skipped %v, want %v and %v", got, skipped, tc.want, tc.skipped)
			}
			if len(got) > 0 {
				if v := values(t, ck)[ck.Info().Tensors[0].Name]; !bytes.Equal(v, f32s(1, 2, 3)) {
					t.Errorf("values %v", v)
				}
			}
		})
	}
}

// Bad records are refused by name.
func TestBadRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkl  []byte
		data map[string][]byte
		want string
	}{
		{"storage declared twice differently", newPk().raw("(").tensorV2("FloatStorage", "0", 2, 0, []int64{1}, []int64{1}).tensorV2("DoubleStorage", "0", 2, 0, []int64{1}, []int64{1}).raw("l").bytes(),
			map[string][]byte{"0": make([]byte, 16)}, "declared twice"},
		{"missing storage record", newPk().tensorV2("FloatStorage", "7", 2, 0, []int64{1}, []int64{1}).bytes(), nil, "has no archive/data/7 record"},
		{"negative stride", newPk().tensorV2("FloatStorage", "0", 2, 0, []int64{2}, []int64{-1}).bytes(), map[string][]byte{"0": f32s(1, 2)}, "bad entry"},
		{"rank mismatch", newPk().tensorV2("FloatStorage", "0", 2, 0, []int64{2}, []int64{1, 1}).bytes(), map[string][]byte{"0": f32s(1, 2)}, "has strides"},
		{"offset past storage", newPk().tensorV2("FloatStorage", "0", 2, 2, []int64{1}, []int64{1}).bytes(), map[string][]byte{"0": f32s(1, 2)}, "past the end of its storage"},
		{"stride overflow", newPk().tensorV2("FloatStorage", "0", 2, 0, []int64{3}, []int64{1 << 30}).bytes(), map[string][]byte{"0": f32s(1, 2)}, "past the end"},
		{"unknown storage type", newPk().tensorV2("EvilStorage", "0", 2, 0, []int64{1}, []int64{1}).bytes(), map[string][]byte{"0": f32s(1, 2)}, "unknown storage type torch.EvilStorage"},
		{"not a storage pid", newPk().raw("(").str("module").raw("tQ").bytes(), nil, "is not a storage"},
		{"from_type calls something else", newPk().glob("torch._tensor", "_rebuild_from_type_v2").raw("(").glob("mypkg", "f").glob("mypkg", "T").raw(")}tR").bytes(), nil, "not a tensor rebuild function"},
		{"unknown torch callable", newPk().glob("torch.hub", "load").raw(")R").bytes(), nil, "torch.hub.load"},
		{"v3 with unknown dtype", newPk().glob("torch._utils", "_rebuild_tensor_v3").raw("(").storage("UntypedStorage", "0", 8).int(0).ints(1).ints(1).raw("\x89").glob("collections", "OrderedDict").raw(")R").glob("torch", "float128").raw("tR").bytes(),
			map[string][]byte{"0": make([]byte, 8)}, "unknown dtype torch.float128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openCrafted(t, tc.pkl, tc.data)
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// A module bomb: each module holds the same child twice, 60 levels deep.
// Modules shared under two keys at every level name 2^levels tensors: many
// short names, or fewer long ones, are refused before they are built.
func TestModuleBombIsRefusedQuickly(t *testing.T) {
	for _, tc := range []struct {
		levels int
		key    int // bytes in each key
		want   string
	}{
		{60, 1, "reference bomb"},
		{18, 250, "add up to more than"},
	} {
		a, b := strings.Repeat("a", tc.key), strings.Repeat("b", tc.key)
		p := newPk()
		p.glob("torch.nn.modules.linear", "Linear").raw(")\x81q\x00}(").str("_parameters").raw("}").str("weight").tensorV2("FloatStorage", "0", 1, 0, []int64{}, []int64{}).raw("s").str("_modules").raw("}ub0")
		for i := 1; i <= tc.levels; i++ {
			p.glob("torch.nn.modules.container", "Sequential").raw(")\x81")
			p.b = append(p.b, 'r')
			p.b = binary.LittleEndian.AppendUint32(p.b, uint32(i))
			p.raw("}(").str("_parameters").raw("}").str("_modules").raw("}(").str(a).raw("j")
			p.b = binary.LittleEndian.AppendUint32(p.b, uint32(i-1))
			p.str(b).raw("j")
			p.b = binary.LittleEndian.AppendUint32(p.b, uint32(i-1))
			p.raw("uub0")
		}
		p.raw("j")
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(tc.levels))
		_, err := openCrafted(t, p.bytes(), map[string][]byte{"0": f32s(1)})
		if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d levels of %d-byte keys: %v", tc.levels, tc.key, err)
		}
	}
}

func TestValuesAreStreamedNotBuffered(t *testing.T) {
	ck := openPath(t, "testdata/views.pt")
	rc, err := ck.Values(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b := make([]byte, 4)
	if _, err := io.ReadFull(rc, b); err != nil {
		t.Fatal(err)
	}
}

// legacyFile builds a legacy torch.save file around an object pickle.
func legacyFile(t *testing.T, obj []byte, keys []string, storages [][]byte, numels []int64) string {
	t.Helper()
	magic := []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}
	b := append([]byte("\x80\x02\x8a\x0a"), magic...)
	b = append(b, '.')
	b = append(b, newPk().raw("M\xe9\x03").bytes()...)
	b = append(b, newPk().raw("}").str("little_endian").raw("\x88s").bytes()...)
	b = append(b, obj...)
	kp := newPk().raw("(")
	for _, k := range keys {
		kp.str(k)
	}
	b = append(b, kp.raw("l").bytes()...)
	for i, s := range storages {
		b = binary.LittleEndian.AppendUint64(b, uint64(numels[i]))
		b = append(b, s...)
	}
	p := filepath.Join(t.TempDir(), "legacy.pt")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Pre-0.4 legacy files share storages through view records
// ('storage', type, root_key, location, root_size, (view_key, offset, view_size)).
func TestLegacyStorageViews(t *testing.T) {
	p := newPk().raw("}(").str("v")
	p.glob("torch._utils", "_rebuild_tensor").raw("(")
	p.raw("(").str("storage").glob("torch", "FloatStorage").str("root").str("cpu").int(6).raw("(").str("view1").int(2).int(3).raw("ttQ")
	p.int(1).ints(2).ints(1).raw("tR")
	p.str("w").tensorV2("FloatStorage", "root", 6, 0, []int64{6}, []int64{1})
	path := legacyFile(t, p.raw("u").bytes(), []string{"root"}, [][]byte{f32s(0, 1, 2, 3, 4, 5)}, []int64{6})
	ck, err := Open(context.Background(), converttest.OpenFile(t, path), convert.Limits{}.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	v := values(t, ck)
	if !bytes.Equal(v["v"], f32s(3, 4)) || !bytes.Equal(v["w"], f32s(0, 1, 2, 3, 4, 5)) {
		t.Fatalf("values %v", v)
	}
	// a view outside its root storage is refused
	p = newPk().raw("}(").str("v").glob("torch._utils", "_rebuild_tensor").raw("(")
	p.raw("(").str("storage").glob("torch", "FloatStorage").str("root").str("cpu").int(6).raw("(").str("view1").int(5).int(3).raw("ttQ")
	p.int(0).ints(1).ints(1).raw("tRu")
	path = legacyFile(t, p.bytes(), []string{"root"}, [][]byte{f32s(0, 1, 2, 3, 4, 5)}, []int64{6})
	if _, err := Open(context.Background(), converttest.OpenFile(t, path), convert.Limits{}.Defaults()); !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "outside storage") {
		t.Fatal(err)
	}
	// a count that disagrees with the pickle is refused
	p = newPk().raw("}").str("w").tensorV2("FloatStorage", "root", 6, 0, []int64{6}, []int64{1}).raw("s")
	path = legacyFile(t, p.bytes(), []string{"root"}, [][]byte{f32s(0, 1, 2, 3, 4, 5)}, []int64{5})
	if _, err := Open(context.Background(), converttest.OpenFile(t, path), convert.Limits{}.Defaults()); !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "holds 5 elements, the pickle says 6") {
		t.Fatal(err)
	}
}
