package numpy

// Tests of the .npy and .npz reader against numpy's own reading of the
// fixtures generate.py writes, plus header parsing, truncation and hostile inputs.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// expected.json, as testdata/generate.py wrote it with numpy.
type expectedFile struct {
	converttest.Fixture
	ZipMethods []int `json:"zip_methods"`
}

func loadExpected(t *testing.T) map[string]map[string]expectedFile {
	t.Helper()
	var exp map[string]map[string]expectedFile
	converttest.LoadJSON(t, "testdata/expected.json", &exp)
	return exp
}

// checkAgainst opens path and compares every tensor, bit for bit, with numpy's reading.
func checkAgainst(t *testing.T, path string, want expectedFile) {
	t.Helper()
	ck := openNumpy(t, path)
	defer ck.Close()
	converttest.MatchTensors(t, ck, want.Tensors)
	converttest.MatchSkipped(t, ck.Info().Skipped, want.Skipped)
}

// openNumpy opens path, which must be read as numpy.
func openNumpy(t *testing.T, path string) convert.Checkpoint {
	t.Helper()
	ck, err := converttest.Open(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if f := ck.Info().Format; f != "numpy" {
		ck.Close()
		t.Fatalf("format %q, want numpy", f)
	}
	return ck
}

func TestNPYMatchesNumpy(t *testing.T) {
	exp := loadExpected(t)["npy"]
	files := make([]string, 0, len(exp))
	for f := range exp {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(f, func(t *testing.T) { checkAgainst(t, filepath.Join("testdata/npy", f), exp[f]) })
	}
}

func TestNPZMatchesNumpy(t *testing.T) {
	exp := loadExpected(t)["npz"]
	for _, f := range []string{"stored.npz", "deflated.npz", "zeros.npz"} {
		t.Run(f, func(t *testing.T) {
			want := exp[f]
			if f == "stored.npz" && (len(want.ZipMethods) != 1 || want.ZipMethods[0] != 0) ||
				f != "stored.npz" && (len(want.ZipMethods) != 1 || want.ZipMethods[0] != 8) {
				t.Fatalf("fixture zip methods %v", want.ZipMethods)
			}
			checkAgainst(t, filepath.Join("testdata/npz", f), want)
		})
	}
}

// A deflated Fortran-order array larger than spoolInMemory goes through a
// temp file, which is gone afterwards.
func TestNPZFortranSpoolsToTempFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	old := spoolInMemory
	spoolInMemory = 16
	defer func() { spoolInMemory = old }()
	checkAgainst(t, "testdata/npz/deflated.npz", loadExpected(t)["npz"]["deflated.npz"])
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
	// The temp file is bounded by MaxTempBytes.
	ck, err := open(context.Background(), converttest.OpenFile(t, "testdata/npz/deflated.npz"), convert.Limits{MaxTempBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range ck.Info().Tensors {
		if tn.Name == "fortran_be_big" {
			if _, err := ck.Values(context.Background(), i); !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "temp file") {
				t.Fatalf("want the temp-file limit, got %v", err)
			}
		}
	}
}

// An object array holds a pickle: refused with a clear message.
func TestObjectArrayIsRefused(t *testing.T) {
	_, err := converttest.Open(t, "testdata/npy/object.npy")
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "pickle") {
		t.Fatalf("want ErrInvalid naming the pickle, got %v", err)
	}
}

func TestTensorNameIsTheFileStem(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"weights.npy", "weights"},
		{"model.layer.NPY", "model.layer"},
		{"noext", "noext"},
		{".npy", "arr_0"},
	} {
		src := memSource(c.file, npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)))
		ck, err := convert.Open(context.Background(), src, "auto", convert.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ck.Info().Tensors[0].Name; got != c.want {
			t.Errorf("%s: name %q, want %q", c.file, got, c.want)
		}
	}
}

// An .npz is a zip with .npy members; zips of other formats are left to them.
func TestNPZDetection(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string][]byte
		want  bool
		cut   bool // to 60 bytes: a first local header and no central directory
	}{
		{"all npy", map[string][]byte{"a.npy": npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4))}, true, false},
		{"a README beside", map[string][]byte{"a.npy": nil, "README.txt": []byte("hi")}, true, false},
		{"a folder entry", map[string][]byte{"sub/": nil, "sub/a.npy": nil}, true, false},
		{"no npy", map[string][]byte{"README.txt": nil}, false, false},
		{"keras-like", map[string][]byte{"a.npy": nil, "config.json": []byte("{}")}, false, false},
		{"keras weights", map[string][]byte{"a.npy": nil, "model.weights.h5": nil}, false, false},
		{"pytorch-like", map[string][]byte{"archive/data.pkl": nil, "archive/data/0": nil}, false, false},
		{"pytorch with npy", map[string][]byte{"archive/data.pkl": nil, "archive/x.npy": nil}, false, false},
		{"empty zip", map[string][]byte{}, false, false},
		{"cut short", map[string][]byte{"a.npy": make([]byte, 100)}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := memSource("x.zip", zipBytes(t, c.files, false))
			if c.cut {
				src = memSource("x.zip", zipBytes(t, c.files, false)[:60])
			}
			head := make([]byte, min(src.Size(), convert.HeadSize))
			src.ReadAt(head, 0)
			if got := match(src, head); got != c.want {
				t.Fatalf("match = %v, want %v", got, c.want)
			}
		})
	}
}

// --format numpy on a zip of something else is an error, not an empty export.
func TestZipWithoutArraysIsRefused(t *testing.T) {
	src := memSource("x.pt", zipBytes(t, map[string][]byte{"archive/data.pkl": []byte("x"), "archive/version": []byte("3")}, false))
	if _, err := open(context.Background(), src, convert.Limits{}); !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "without .npy members") {
		t.Fatalf("err = %v", err)
	}
}

// Header text parsing, as numpy writes it and as hostile files might.
func TestHeaderParsing(t *testing.T) {
	ok := []struct {
		text    string
		dtype   convert.DType
		shape   []int64
		fortran bool
		swap    bool
		skip    bool
	}{
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", convert.Float64, []int64{3, 4}, false, false, false},
		{`{"descr": ">i4", "fortran_order": True, "shape": (2,)}`, convert.Int32, []int64{2}, true, true, false},
		{"{'descr': '|b1', 'fortran_order': False, 'shape': (), }", convert.Bool, []int64{}, false, false, false},
		{"{'shape': (5L,), 'fortran_order': False, 'descr': '<u8'}", convert.Uint64, []int64{5}, false, false, false},
		{"{'descr': '=f2', 'fortran_order': False, 'shape': (0, 7), }", convert.Float16, []int64{0, 7}, false, false, false},
		{"{'descr': '>u1', 'fortran_order': False, 'shape': (1,), }", convert.Uint8, []int64{1}, false, false, false},
		{"{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", "", []int64{1}, false, false, true},
		{"{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (1,), }", "", []int64{1}, false, false, true},
		{"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,), }", "", []int64{1}, false, false, true},
		{"{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", "", []int64{1}, false, false, true},
		{"{'descr': u'<f4', 'fortran_order': False, 'shape': (1,), }  \n", convert.Float32, []int64{1}, false, false, false},
	}
	for _, c := range ok {
		h := &header{Major: 1}
		if err := h.parse([]byte(c.text)); err != nil {
			t.Errorf("%s: %v", c.text, err)
			continue
		}
		if h.DType != c.dtype || !slices.Equal(h.Shape, c.shape) || h.Fortran != c.fortran || h.Swap != c.swap || (h.Skip != "") != c.skip {
			t.Errorf("%s: got %s %v fortran=%v swap=%v skip=%q", c.text, h.DType, h.Shape, h.Fortran, h.Swap, h.Skip)
		}
	}
	bad := []struct{ text, msg string }{
		{"", "unexpected end"},
		{"{'descr': '<f8', 'fortran_order': False}", "lacks"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "unexpected key"},
		{"{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", "fortran_order"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': [3]}", "not a tuple"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (3)}", "not a tuple"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}", "negative dimension"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,)}", "only integers"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", "out of range"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}", "too many elements"},
		{"{'descr': 8, 'fortran_order': False, 'shape': (1,)}", "not a string"},
		{"{'descr': '<', 'fortran_order': False, 'shape': (1,)}", "malformed descr"},
		{"{'descr': '<f8x', 'fortran_order': False, 'shape': (1,)}", "malformed descr"},
		{"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", "repeated"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk", "after the dict"},
		{"{'descr': '<f8', 'fortran_order': __import__('os'), 'shape': (1,)}", "unexpected"},
		{"{'descr': '<f8 'fortran_order': False, 'shape': (1,)}", "expected"},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
		{"[1, 2]", "not a dict"},
		{strings.Repeat("(", 100) + strings.Repeat(")", 100), "too deep"},
		{"{'descr': 'TrueX', 'fortran_order': Truex, 'shape': (1,)}", "unexpected"},
	}
	for _, c := range bad {
		h := &header{Major: 1}
		err := h.parse([]byte(c.text))
		if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: want ErrInvalid with %q, got %v", c.text, c.msg, err)
		}
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	b := npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4))
	_, err := readHeader(bytes.NewReader(b), int64(len(b)), 32)
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("want the header limit, got %v", err)
	}
}

// Every prefix of a valid file is refused, at Open or while streaming, never accepted short.
func TestTruncatedFilesAreInvalid(t *testing.T) {
	for _, f := range []string{"testdata/npy/fortran_3d.npy", "testdata/npy/be_f8.npy", "testdata/npy/v2.npy", "testdata/npz/stored.npz", "testdata/npz/deflated.npz"} {
		full, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		step := max(len(full)/97, 1)
		for n := 0; n < len(full); n += step {
			if err := converttest.OpenAndReadAll(memSource(filepath.Base(f), full[:n]), "auto", convert.Limits{}); !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("%s cut at %d of %d bytes: want ErrInvalid, got %v", f, n, len(full), err)
			}
		}
	}
}

func TestHostileInputs(t *testing.T) {
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			err := converttest.OpenAndReadAll(memSource(c.file, c.data), "auto", convert.Limits{})
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("want ErrInvalid with %q, got %v", c.msg, err)
			}
		})
	}
}

// The files in testdata/hostile (repository root) for this format are the
// ones hostileCases builds, so the end-to-end test sees the same cases.
func TestHostileFilesUpToDate(t *testing.T) {
	for _, c := range hostileCases(t) {
		if c.export {
			converttest.HostileFileUpToDate(t, c.file, c.data, c.msg)
		}
	}
}
