package numpyobj

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	"ckpt2csv/convert/pickle"
)

type expect struct {
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	SHA256 string  `json:"sha256"`
}

// Arrays pickled by numpy at protocols 2, 4 and 5 stream bit-exact values.
func TestArraysMatchNumpy(t *testing.T) {
	var want map[string]expect
	b, err := os.ReadFile("../testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"2", "4", "5"} {
		t.Run("protocol"+proto, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "testdata", "numpy_p"+proto+".pkl"))
			if err != nil {
				t.Fatal(err)
			}
			v, err := pickle.NewDecoderAt(bytes.NewReader(data), 0, int64(len(data)), pickle.Options{}).Decode()
			if err != nil {
				t.Fatal(err)
			}
			d := v.(*pickle.Dict)
			for _, it := range d.Items {
				name := it.Key.(string)
				a, ok, err := FromValue(it.Value)
				if err != nil || !ok {
					t.Fatalf("%s: ok=%v err=%v (%s)", name, ok, err, pickle.Repr(it.Value))
				}
				w, has := want[name]
				if !has {
					if a.Skip == "" {
						t.Errorf("%s: not skipped", name)
					}
					continue
				}
				if a.Descr != w.DType && !(strings.TrimLeft(a.Descr, "<|") == strings.TrimLeft(w.DType, "<|")) {
					t.Errorf("%s: descr %s want %s", name, a.Descr, w.DType)
				}
				if len(a.Shape) != len(w.Shape) {
					t.Errorf("%s: shape %v want %v", name, a.Shape, w.Shape)
				}
				rc, err := a.Values()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				vals, err := io.ReadAll(rc)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := converttest.SHA256(a.DType.DType, vals); got != w.SHA256 {
					t.Errorf("%s: sha256 %s want %s", name, got, w.SHA256)
				}
				if name == "big" && proto != "2" && a.Data.Src == nil {
					t.Errorf("big array copied into memory")
				}
			}
		})
	}
}

func TestParseDescr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want convert.DType
		be   bool
		skip bool
	}{
		{"<f8", convert.Float64, false, false}, {">f4", convert.Float32, true, false}, {"|b1", convert.Bool, false, false},
		{"i1", convert.Int8, false, false}, {">u2", convert.Uint16, true, false}, {"<c16", "", false, true},
		{"|O", "", false, true}, {"<U5", "", false, true}, {"<M8", "", false, true}, {"<f16", "", false, true},
		{"", "", false, true}, {"<fx", "", false, true}, {"|V8", "", false, true},
	} {
		d := ParseDescr(tc.in)
		if d.DType != tc.want || d.BigEndian != tc.be || (d.Skip != "") != tc.skip {
			t.Errorf("%q: %+v", tc.in, d)
		}
	}
}

func TestInconsistentArraysAreInvalid(t *testing.T) {
	dtype := `cnumpy
dtype
(S'f8'
I0
I1
tR(I3
S'<'
NNNI-1
I-1
I0
tb`
	for _, tc := range []struct{ name, shape, data, want string }{
		{"short data", "(I4\nt", "U\x08" + strings.Repeat("\x00", 8), "needs 32 bytes"},
		{"huge shape", "(L1099511627776L\nL1099511627776L\nt", "U\x08" + strings.Repeat("\x00", 8), "too many elements"},
		{"negative dim", "(I-1\nt", "U\x00", "bad dimension"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := "cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR(I1\n" + tc.shape + dtype + "I00\n" + tc.data + "tb."
			v, err := pickle.Unmarshal([]byte(p), pickle.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, ok, err := FromValue(v)
			if !ok || !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
		})
	}
}

// FuzzFromValue decodes a pickle and interprets every value in it as a numpy
// record, streaming the arrays it finds.
func FuzzFromValue(f *testing.F) {
	// small arrays at protocols 2 (_codecs.encode data) and 4/5 (bytes, _frombuffer)
	dtype := "cnumpy\ndtype\n(S'f4'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"
	f.Add([]byte("cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR(I1\n(I2\nI2\nt" + dtype + "I01\nU\x10" + strings.Repeat("\x00\x00\x80?", 4) + "tb."))
	f.Add([]byte("\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85c_codecs\nencode\nX\x01\x00\x00\x00bX\x06\x00\x00\x00latin1\x86R\x87R(K\x01K\x03\x85" + dtype + "\x89c_codecs\nencode\nX\x0c\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00X\x06\x00\x00\x00latin1\x86Rtb."))
	f.Add([]byte("\x80\x05cnumpy.core.numeric\n_frombuffer\n(\x96\x08\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08" + dtype + "K\x02\x85X\x01\x00\x00\x00CtR."))
	f.Add([]byte("cnumpy.core.multiarray\nscalar\n(" + dtype + "C\x04\x00\x00\xc0?tR."))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := pickle.NewDecoderAt(bytes.NewReader(data), 0, int64(len(data)), pickle.Options{Limits: convert.Limits{MaxHeaderBytes: 1 << 20}}).Decode()
		if err != nil {
			return
		}
		budget := int64(4 << 20)
		pickle.Walk(v, 100, func(x any, _ int) bool {
			a, ok, err := FromValue(x)
			if !ok || err != nil || a.Skip != "" {
				return true
			}
			n := a.Numel() * int64(a.ItemSize)
			if n > budget {
				return true
			}
			budget -= n
			rc, err := a.Values()
			if err != nil {
				return true
			}
			got, err := io.Copy(io.Discard, rc)
			if err == nil && got != n {
				t.Fatalf("%s %v: streamed %d bytes, want %d", a.Descr, a.Shape, got, n)
			}
			return true
		})
	})
}
