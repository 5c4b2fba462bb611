package sklearn_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	_ "ckpt2csv/convert/numpy" // joblib < 0.10 array files
	"ckpt2csv/convert/sklearn"
)

// expected.json, as generate.py writes it.
type expectedFile struct {
	converttest.Fixture
	SklearnVersion string `json:"sklearn_version"`
}

func loadExpected(t *testing.T) map[string]expectedFile {
	t.Helper()
	var e struct {
		Files map[string]expectedFile `json:"files"`
	}
	converttest.LoadJSON(t, "testdata/expected.json", &e)
	return e.Files
}

func open(t *testing.T, path string) convert.Checkpoint {
	t.Helper()
	src := converttest.OpenFile(t, path)
	ck, err := sklearn.Open(context.Background(), src, convert.Limits{}.Defaults())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

// Every fixture the real scikit-learn / joblib wrote: the same tensors, in
// pickle order, with the same names, dtypes, shapes and values (sha256), and
// the same names skipped.
func TestFixturesMatchFramework(t *testing.T) {
	for file, want := range loadExpected(t) {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			head, _ := os.ReadFile(path)
			if len(head) > convert.HeadSize {
				head = head[:convert.HeadSize]
			}
			if !sklearn.Match(converttest.OpenFile(t, path), head) {
				t.Errorf("Match does not recognise %s", file)
			}
			ck := open(t, path)
			info := ck.Info()
			if info.Format != "sklearn" {
				t.Errorf("format %q", info.Format)
			}
			converttest.MatchTensors(t, ck, want.Tensors)
			converttest.MatchSkipped(t, info.Skipped, want.Skipped)
			if want.SklearnVersion != "" && info.Metadata["_sklearn_version"] != want.SklearnVersion {
				t.Errorf("_sklearn_version %v, want %s", info.Metadata["sklearn_version"], want.SklearnVersion)
			}
		})
	}
}

// LayerType is the class of the estimator the attribute belongs to.
func TestLayerTypeIsOwningEstimator(t *testing.T) {
	ck := open(t, "testdata/pipeline_p4.pkl")
	want := map[string]string{
		"steps.0.transformers_.0.mean_": "StandardScaler",
		"steps.1.coef_":                 "LogisticRegression",
	}
	for _, tn := range ck.Info().Tensors {
		if w, ok := want[tn.Name]; ok && tn.LayerType != w {
			t.Errorf("%s: layer type %q, want %q", tn.Name, tn.LayerType, w)
		}
	}
	ck = open(t, "testdata/forest_p4.pkl")
	for _, tn := range ck.Info().Tensors {
		if strings.Contains(tn.Name, ".tree_.") && tn.LayerType != "Tree" {
			t.Errorf("%s: layer type %q, want Tree", tn.Name, tn.LayerType)
		}
	}
}

// Compressed joblib files report their compressor.
func TestCompressedJoblibMetadata(t *testing.T) {
	for _, c := range []string{"zlib", "gzip", "bz2", "xz", "lzma", "lz4"} {
		path := "testdata/forest_" + c + ".joblib"
		if _, err := os.Stat(path); err != nil {
			continue
		}
		ck := open(t, path)
		if got := ck.Info().Metadata["compression"]; got != c {
			t.Errorf("%s: compression %v", path, got)
		}
		if ck.Info().Metadata["joblib"] != true {
			t.Errorf("%s: not marked joblib", path)
		}
	}
}

// The hostile files refuse with their message, and no payload ever runs.
func TestHostileRefused(t *testing.T) {
	const marker = "/tmp/ckpt2csv-sklearn-payload-ran"
	os.Remove(marker)
	files := converttest.HostileFiles(t, "sklearn-*")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src := converttest.OpenFile(t, path)
			ck, err := convert.Open(context.Background(), src, "auto", convert.Limits{}.Defaults())
			if err == nil {
				ck.Close()
				t.Fatal("opened")
			}
			converttest.CheckRefused(t, path, err)
		})
	}
	if n := len(files); n < 5 {
		t.Errorf("found %d hostile files", n)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a payload ran")
	}
}

// Detection claims pickles and compressed pickles only.
func TestMatch(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want bool
	}{
		{"text", []byte("hello world, this is not a pickle at all\n"), false},
		{"zlib of text", zlibOf([]byte("some text that is not a pickle, repeated enough to compress")), false},
		{"protocol 2 int", []byte("\x80\x02K\x05."), true},
		{"protocol 0 dict", []byte("(dp0\nS'a'\np1\nI1\ns."), true},
		{"protocol 0 object", []byte("ccopy_reg\n_reconstructor\np0\n(csklearn.linear_model.base\nLinearRegression\np1\n"), true},
		{"text starting with c", []byte("cat videos and more\nsecond line\nthird line\n"), false},
		{"torch legacy magic", []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03."), false},
		{"protocol 9", []byte("\x80\x09K\x05."), false},
		{"zlib pickle", zlibOf([]byte("\x80\x04K\x05.")), true},
		{"gzip of text", gzipOf([]byte("col_a,col_b\n1,2\n3,4\n")), false},
		{"gzip of torch legacy", gzipOf([]byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")), false},
		{"gzip pickle", gzipOf([]byte("\x80\x02}q\x00.")), true},
		{"pickle over a limit", append([]byte("\x80\x04\x8b\xa0\x86\x01\x00"), make([]byte, 100000)...), true}, // Open says which
		{"empty", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := memSource(c.data)
			if got := sklearn.Match(src, c.data); got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zlibOf(b []byte) []byte {
	var buf bytes.Buffer
	w := zlibWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// The real-world files: every tensor bit-exact. Their ground truth names a
// Pipeline's steps by step name (steps.scaler.mean_); this reader names them
// by position, as SPEC §4 does (steps.0.mean_).
func TestRealFiles(t *testing.T) {
	cases := []struct {
		name   string
		rename map[string]string // ground-truth prefix -> ours
	}{
		{"skj_iris_0bvdnt", map[string]string{"steps.scaler.": "steps.0.", "steps.classifier.": "steps.1."}},
		{"skp_logreg_poly", nil},
		{"skp_svc_rockmines", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, exp := converttest.Real(t, c.name)
			ck := open(t, path)
			byName := map[string]int{}
			for i, tn := range ck.Info().Tensors {
				byName[tn.Name] = i
			}
			if len(byName) != len(exp.Tensors) {
				t.Errorf("%d tensors, want %d", len(byName), len(exp.Tensors))
			}
			for _, e := range exp.Tensors {
				name := e.Name
				for from, to := range c.rename {
					if strings.HasPrefix(name, from) {
						name = to + strings.TrimPrefix(name, from)
					}
				}
				i, ok := byName[name]
				if !ok {
					t.Errorf("missing %s (%s)", name, e.Name)
					continue
				}
				e.Name = name
				converttest.MatchTensor(t, ck, i, e)
			}
			for _, e := range exp.ExtraTensors {
				if !slices.ContainsFunc(ck.Info().Skipped, func(s convert.Skipped) bool { return s.Name == e.Name }) {
					t.Errorf("%s (%s) is not listed as skipped", e.Name, e.DType)
				}
			}
		})
	}
}

// A few bytes of pickle can reference one tuple 2^60 times through its
// memo: the walk gives up with an error instead of running for ever.
func TestSharedGraphBombRefused(t *testing.T) {
	b := []byte("\x80\x02]q\x00")
	for range 60 {
		b = append(b, "0h\x00h\x00\x86q\x00"...)
	}
	b = append(b, '.')
	start := time.Now()
	_, err := sklearn.Open(context.Background(), memSource(b), convert.Limits{}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "too large to walk") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	t.Logf("refused in %v", time.Since(start))
}

// A joblib < 0.10 pickle whose array files are not beside it fails with a
// message naming the missing file.
func TestOldJoblibMissingArrayFile(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/logreg09.pkl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "logreg09.pkl")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = sklearn.Open(context.Background(), converttest.OpenFile(t, path), convert.Limits{}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), `"logreg09.pkl_01.npy" is missing`) {
		t.Fatalf("err = %v", err)
	}
}

// Bytes after the pickle's STOP that do not start another pickle are
// ignored, as pickle.load ignores them.
func TestTrailingBytesIgnored(t *testing.T) {
	b, err := os.ReadFile("testdata/ridge_p4.pkl")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := sklearn.Open(context.Background(), memSource(append(b, "\n\x00\x00junk after the pickle"...)), convert.Limits{}.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	want := loadExpected(t)["ridge_p4.pkl"]
	if len(ck.Info().Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(ck.Info().Tensors), len(want.Tensors))
	}
	if _, ok := ck.Info().Metadata["pickles"]; ok {
		t.Error("junk counted as a pickle")
	}
}

// A Fortran-order, big-endian 3-d array comes out in C order, little-endian.
func TestFortranBigEndian3D(t *testing.T) {
	data := make([]byte, 2*3*4*2)
	for p := range 24 {
		binary.BigEndian.PutUint16(data[2*p:], uint16(p)) // F order: (i,j,k) at i + 2j + 6k
	}
	ck, err := sklearn.Open(context.Background(), memSource(pickleArray([]int32{2, 3, 4}, ">i2", true, data)), convert.Limits{}.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tn := ck.Info().Tensors[0]
	if tn.Name != "array" || tn.DType != convert.Int16 || !slices.Equal(tn.Shape, []int64{2, 3, 4}) {
		t.Fatalf("tensor %+v", tn)
	}
	got := converttest.Values(t, ck, 0)
	n := 0
	for i := range 2 {
		for j := range 3 {
			for k := range 4 {
				if v := binary.LittleEndian.Uint16(got[2*n:]); int(v) != i+2*j+6*k {
					t.Fatalf("[%d %d %d] = %d, want %d", i, j, k, v, i+2*j+6*k)
				}
				n++
			}
		}
	}
}

// An array whose data is shorter than its shape says is refused when opened.
func TestShortArrayDataRefused(t *testing.T) {
	_, err := sklearn.Open(context.Background(), memSource(pickleArray([]int32{10}, "<f8", false, make([]byte, 40))), convert.Limits{}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}

// A compressed joblib file cut short is detected and refused, naming the
// compressor.
func TestTruncatedCompressedRefused(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"forest_xz.joblib", "xz stream is truncated"},
		{"forest_bz2.joblib", "bz2 stream is truncated"},
		{"forest_lz4.joblib", "lz4 stream is truncated"},
		{"forest_zlib.joblib", "zlib stream is truncated"},
		{"forest_gzip.joblib", "gzip stream is truncated"},
		{"svc_j0.joblib", "past the end of the data"},
		{"svc_p4.pkl", "past the end of the data"},
	} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			src := memSource(b[:len(b)*2/3])
			_, err = convert.Open(context.Background(), src, "auto", convert.Limits{}.Defaults())
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// The inflated copy of a compressed file never stays behind: not after
// Close, not after a failure.
func TestTempFileRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	ck := open(t, "testdata/forest_xz.joblib")
	converttest.Values(t, ck, 0)
	ck.Close()
	b, _ := os.ReadFile("testdata/forest_xz.joblib")
	if _, err := sklearn.Open(context.Background(), memSource(b[:len(b)/2]), convert.Limits{}.Defaults()); err == nil {
		t.Fatal("truncated file opened")
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// The inflate limits hold: a file that inflates past MaxInflateBytes is refused.
func TestInflateLimit(t *testing.T) {
	src := converttest.OpenFile(t, "testdata/forest_zlib.joblib")
	_, err := sklearn.Open(context.Background(), src, convert.Limits{MaxInflateBytes: 1000}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "inflates to more than 1000 bytes") {
		t.Fatalf("err = %v", err)
	}
}
