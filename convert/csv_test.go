package convert

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestRowHeadCarries(t *testing.T) {
	for _, tc := range []struct {
		pre, mid string
		start    int64
	}{
		{"", "", 0}, {"", "", 8}, {"3,conv,weight,", ",", 99}, {"x,", ",", 999998}, {"", ";", 1<<53 - 3},
	} {
		h := newRowHead([]byte(tc.pre), []byte(tc.mid), true, tc.start)
		for v := tc.start; v < tc.start+5; v++ {
			if got, want := string(h.buf), tc.pre+strconv.FormatInt(v, 10)+tc.mid; got != want {
				t.Fatalf("head at %d reads %q, want %q", v, got, want)
			}
			h.inc()
		}
	}
}

func TestAppendTextEscapesFormulasAndQuotes(t *testing.T) {
	for _, tc := range []struct{ in, want, raw string }{
		{"features.0", "features.0", "features.0"},
		{"=SUM(A1)", "'=SUM(A1)", "=SUM(A1)"},
		{"-1", "'-1", "-1"},
		{"@x", "'@x", "@x"},
		{"+x", "'+x", "+x"},
		{"\tx", "'\tx", "\tx"},
		{"a,b", `"a,b"`, `"a,b"`},
		{`say "hi"`, `"say ""hi"""`, `"say ""hi"""`},
		{"line\nbreak", "\"line\nbreak\"", "\"line\nbreak\""},
		{"=a,b", `"'=a,b"`, `"=a,b"`},
		{"", "", ""},
	} {
		if got := string(appendText(nil, tc.in, false)); got != tc.want {
			t.Errorf("appendText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := string(appendText(nil, tc.in, true)); got != tc.raw {
			t.Errorf("raw appendText(%q) = %q, want %q", tc.in, got, tc.raw)
		}
	}
}

func TestAppendFloatShortestAtOwnWidth(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		bits int
		want string
	}{
		{float64(float32(0.1)), 32, "0.1"},
		{0.1, 64, "0.1"},
		{float64(float32(1) / 3), 32, "0.33333334"},
		{float64(float32(16777216)), 32, "1.6777216e+07"},
		{3.4028234663852886e+38, 32, "3.4028235e+38"},
		{1e-45, 32, "1e-45"},
		{5e-324, 64, "5e-324"},
	} {
		if got := string(AppendFloat(nil, tc.f, tc.bits)); got != tc.want {
			t.Errorf("AppendFloat(%v, %d) = %q, want %q", tc.f, tc.bits, got, tc.want)
		}
	}
}

// flat_index carries through 99 -> 100 and 999 -> 1000 inside one batch.
func TestFormatRecordFlatIndexCarries(t *testing.T) {
	for _, first := range []int64{0, 95, 995, 99995} {
		raw := make([]byte, 4*12)
		rec := buildRecord(schemaFor(Float32), Float32, raw, 12, first, make([]int64, 12), nil)
		tmpl := newRowTemplate(DefaultColumns, 1, "fc", "bias", "fc.bias", false)
		text := tmpl.formatRecord(nil, rec)
		rec.Release()
		var want strings.Builder
		for i := range int64(12) {
			want.WriteString("1,fc,bias,fc.bias," + strconv.FormatInt(first+i, 10) + ",0\n")
		}
		if string(text) != want.String() {
			t.Errorf("from %d:\n%s\nwant\n%s", first, text, want.String())
		}
	}
}

func TestFormatRecordEveryColumnOrder(t *testing.T) {
	vals := []float32{0.5, -1.25e-7, float32(math.NaN())}
	for _, tc := range []struct {
		cols []string
		want string
	}{
		{DefaultColumns, "3,fc,weight,fc.weight,7,0.5\n3,fc,weight,fc.weight,8,-1.25e-07\n3,fc,weight,fc.weight,9,NaN\n"},
		{[]string{ColFlatIndex, ColValue}, "7,0.5\n8,-1.25e-07\n9,NaN\n"},
		{[]string{ColFlatIndex, ColTensor, ColValue, ColLayerIndex}, "7,fc.weight,0.5,3\n8,fc.weight,-1.25e-07,3\n9,fc.weight,NaN,3\n"},
		{[]string{ColValue, ColFlatIndex}, "0.5,7\n-1.25e-07,8\nNaN,9\n"},
		{[]string{ColLayerName, ColValue}, "fc,0.5\nfc,-1.25e-07\nfc,NaN\n"},
		{[]string{ColTensor}, "fc.weight\nfc.weight\nfc.weight\n"},
	} {
		tmpl := newRowTemplate(tc.cols, 3, "fc", "weight", "fc.weight", false)
		raw := binary.LittleEndian.AppendUint32(nil, math.Float32bits(vals[0]))
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(vals[1]))
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(vals[2]))
		rec := buildRecord(schemaFor(Float32), Float32, raw, 3, 7, make([]int64, 3), nil)
		text := tmpl.formatRecord(nil, rec)
		if string(text) != tc.want {
			t.Errorf("columns %v:\n%s\nwant\n%s", tc.cols, text, tc.want)
		}
		// rowsTo cuts after the first row reaching n bytes from row first
		lines := strings.SplitAfter(tc.want, "\n")[:3]
		for first := range 3 {
			for n := 1; n <= len(tc.want)+1; n++ {
				rows, size := 0, 0
				for _, l := range lines[first:] {
					if size >= n {
						break
					}
					rows, size = rows+1, size+len(l)
				}
				if r, sz := tmpl.rowsTo(rec, first, n); r != rows || sz != size {
					t.Errorf("columns %v: rowsTo(%d, %d) = %d rows, %d bytes, want %d, %d", tc.cols, first, n, r, sz, rows, size)
				}
			}
		}
		rec.Release()
	}
}
