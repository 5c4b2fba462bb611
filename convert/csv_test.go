package convert

import (
	"strconv"
	"testing"
)

func TestDecimalCounterCarries(t *testing.T) {
	for _, start := range []int64{0, 8, 99, 999998, 1<<53 - 3} {
		var c decimalCounter
		c.set(start)
		for v := start; v < start+5; v++ {
			if got := string(c.digits()); got != strconv.FormatInt(v, 10) {
				t.Fatalf("counter at %d reads %q", v, got)
			}
			c.inc()
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
