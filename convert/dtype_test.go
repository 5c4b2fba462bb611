package convert

// Tests of the narrow float helpers over every bit pattern.

import (
	"encoding/binary"
	"math"
	"testing"
)

// refFloat is the value of a binary float with the given sign, biased
// exponent and mantissa fields, computed from the IEEE 754 definition in
// float64 (which holds every narrow value exactly). Callers handle the
// Inf/NaN encodings, which differ between formats.
func refFloat(sign, exp, man uint64, expBits, manBits uint) float64 {
	bias := int(1)<<(expBits-1) - 1
	var v float64
	if exp == 0 {
		v = math.Ldexp(float64(man), 1-bias-int(manBits)) // subnormal
	} else {
		v = math.Ldexp(float64(man|1<<manBits), int(exp)-bias-int(manBits))
	}
	if sign != 0 {
		v = -v
	}
	return v
}

func sameFloat32(a float32, b float64) bool {
	if math.IsNaN(b) {
		return math.IsNaN(float64(a))
	}
	return math.Float32bits(a) == math.Float32bits(float32(b))
}

// Every binary16 value widens exactly and narrows back to the same bits (NaNs to the canonical NaN).
func TestFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		s, e, m := uint64(h>>15), uint64(h>>10&0x1f), uint64(h&0x3ff)
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(1 - 2*int(s))
		case e == 0x1f:
			want = math.NaN()
		default:
			want = refFloat(s, e, m, 5, 10)
		}
		f := Float16To32(uint16(h))
		if !sameFloat32(f, want) {
			t.Fatalf("Float16To32(%#04x) = %g (%#08x), want %g", h, f, math.Float32bits(f), want)
		}
		back := Float32To16(f)
		if math.IsNaN(want) {
			if back != 0x7e00 {
				t.Fatalf("Float32To16(NaN from %#04x) = %#04x, want 0x7e00", h, back)
			}
			// The payload survives widening (checksums see the file's NaN before canonicalising).
			if math.Float32bits(f)&0x7fffff != uint32(m)<<13 {
				t.Fatalf("Float16To32(%#04x) lost the NaN payload: %#08x", h, math.Float32bits(f))
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("Float32To16(Float16To32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestBFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		s, e, m := uint64(h>>15), uint64(h>>7&0xff), uint64(h&0x7f)
		var want float64
		switch {
		case e == 0xff && m == 0:
			want = math.Inf(1 - 2*int(s))
		case e == 0xff:
			want = math.NaN()
		default:
			want = refFloat(s, e, m, 8, 7)
		}
		if f := BFloat16To32(uint16(h)); !sameFloat32(f, want) {
			t.Fatalf("BFloat16To32(%#04x) = %g, want %g", h, f, want)
		}
	}
}

// OCP FP8 E4M3FN: bias 7, no infinities, only S.1111.111 is NaN, max ±448.
func TestFloat8E4M3Exhaustive(t *testing.T) {
	for v := 0; v < 256; v++ {
		s, e, m := uint64(v>>7), uint64(v>>3&0xf), uint64(v&0x7)
		want := refFloat(s, e, m, 4, 3)
		if e == 0xf && m == 0x7 {
			want = math.NaN()
		}
		if f := Float8E4M3To32(uint8(v)); !sameFloat32(f, want) {
			t.Fatalf("Float8E4M3To32(%#02x) = %g (%#08x), want %g", v, f, math.Float32bits(f), want)
		}
	}
	if Float8E4M3To32(0x7e) != 448 || Float8E4M3To32(0x01) != 0x1p-9 {
		t.Fatal("E4M3 max or min subnormal wrong")
	}
}

// OCP FP8 E5M2: IEEE-like, bias 15, exponent 31 is Inf (mantissa 0) or NaN, max ±57344.
func TestFloat8E5M2Exhaustive(t *testing.T) {
	for v := 0; v < 256; v++ {
		s, e, m := uint64(v>>7), uint64(v>>2&0x1f), uint64(v&0x3)
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(1 - 2*int(s))
		case e == 0x1f:
			want = math.NaN()
		default:
			want = refFloat(s, e, m, 5, 2)
		}
		if f := Float8E5M2To32(uint8(v)); !sameFloat32(f, want) {
			t.Fatalf("Float8E5M2To32(%#02x) = %g, want %g", v, f, want)
		}
	}
	if Float8E5M2To32(0x7b) != 57344 || Float8E5M2To32(0x01) != 0x1p-16 {
		t.Fatal("E5M2 max or min subnormal wrong")
	}
}

// CanonicalNaN rewrites every NaN, and only NaNs, to the dtype's quiet NaN.
func TestCanonicalNaN(t *testing.T) {
	f16 := make([]byte, 2<<16)
	for h := 0; h < 1<<16; h++ {
		binary.LittleEndian.PutUint16(f16[2*h:], uint16(h))
	}
	CanonicalNaN(Float16, f16)
	for h := 0; h < 1<<16; h++ {
		got := binary.LittleEndian.Uint16(f16[2*h:])
		isNaN := h&0x7c00 == 0x7c00 && h&0x3ff != 0
		if isNaN && got != 0x7e00 || !isNaN && got != uint16(h) {
			t.Fatalf("float16 %#04x -> %#04x", h, got)
		}
	}
	f8 := make([]byte, 256)
	for v := range f8 {
		f8[v] = byte(v)
	}
	e4 := append([]byte(nil), f8...)
	CanonicalNaN(Float8E4M3, e4)
	e5 := append([]byte(nil), f8...)
	CanonicalNaN(Float8E5M2, e5)
	for v := 0; v < 256; v++ {
		if nan := math.IsNaN(float64(Float8E4M3To32(uint8(v)))); nan && e4[v] != 0x7f || !nan && e4[v] != byte(v) {
			t.Fatalf("e4m3 %#02x -> %#02x", v, e4[v])
		}
		if nan := math.IsNaN(float64(Float8E5M2To32(uint8(v)))); nan && e5[v] != 0x7e || !nan && e5[v] != byte(v) {
			t.Fatalf("e5m2 %#02x -> %#02x", v, e5[v])
		}
	}
}
