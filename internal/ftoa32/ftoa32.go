// Package ftoa32 formats float32 values as the shortest decimal that reads
// back to the same float32, byte for byte as strconv does.
//
// It is hand-written because strconv's shortest formatting is general-purpose
// and measured about 55 ns per float32 here, and no library available here
// formats float32 shortest faster; this takes about 20 ns on the same machine.
// It finds the decimal with Raffaello Giulietti's Schubfach algorithm ("The
// Schubfach way to render doubles"), as the JDK's FloatToDecimal does.
package ftoa32

//go:generate go run gen.go

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
)

// AppendFloat32 appends the shortest decimal that parses back to f as a float32,
// byte-identical to strconv.AppendFloat(b, float64(f), 'g', -1, 32) for every finite f.
// NaN and ±Inf are handed to strconv.
func AppendFloat32(b []byte, f float32) []byte {
	u := math.Float32bits(f)
	t := u & (1<<23 - 1)
	bq := u >> 23 & 0xff
	if t == 0 || bq == 0xff {
		return appendSpecial(b, f)
	}

	// toDecimal (below) for a regular spacing, c != 2^23, written out here
	// as a call costs a good part of the budget. Subnormals have q = -149
	// as bq = 1 does, and no hidden bit. (The JDK computes c < 8 with 10c and
	// one digit more because Java always prints two digits; Go prints the
	// shortest.) It gets the JDK's results with less work:
	//   - one multiplication: g·(cb±2)·2^h = g·cb·2^h ± g·2^(h+1);
	//   - no rounding to odd: with x the upper word of a product and
	//     rop(x) = 2·(x>>32) + (x%2^32 != 0), rop(x) + out <= 4n iff
	//     x + out <= n·2^33, and 4n + out <= rop(x) iff n·2^33 + out <= x,
	//     so the n·10^k in the rounding interval are lo10 <= n <= hi10;
	//   - no branches: which candidate wins depends on the value and
	//     would often be mispredicted.
	c := t
	if bq != 0 {
		c |= 1 << 23
	}
	x := &expTab[bq]
	out := uint64(c & 1) // an odd c's interval excludes its ends
	xb, lo := bits.Mul64(x.g, uint64(c)<<(x.h2&63))
	_, borrow := bits.Sub64(lo, x.dlo, 0)
	_, carry := bits.Add64(lo, x.dlo, 0)
	lo10 := (xb - x.dhi - borrow + out + 1<<33 - 1) >> 33
	hi10 := (xb + x.dhi + carry - out) >> 33
	s := xb >> 33 // vb>>2: v is in [s, s+1)·10^k

	// The interval is narrower than 10^(k+1), so it holds at most one
	// multiple of 10^(k+1), and if it does, that is the shortest.
	sp := hi10 / 10
	short := b2u(sp*10 >= lo10)
	// Otherwise s·10^k or (s+1)·10^k, the closer one if both are in, the
	// even one on a tie (vb = 4s+2 exactly).
	uin := b2u(lo10 <= s)
	win := b2u(s < hi10)
	preferT := b2u(xb&(1<<33-1)+s&1 > 1<<32)
	m := s + (uin ^ 1 | win&preferT)
	if short != 0 {
		m = sp
	}
	e := x.k + int(short)

	// float32(1e-4) <= |f| < 1 exactly when strconv prints 0.ddd with at
	// most three zeros after the point: the shortest decimal of a float
	// below 1 is below 1, and float32(1e-4) is above 1e-4. Weights land
	// here, so this builds the text in two registers, without a buffer, and
	// stores it as two overlapping words, without calling memmove.
	if a := u &^ (1 << 31); a < 0x38d1b717 || a >= 0x3f800000 {
		return format(b, u>>31, uint32(m), e)
	}
	ascii, d0 := digits9(uint32(m))
	trail := bits.LeadingZeros64(ascii^0x3030303030303030) >> 3 // zeros ending m
	// "0.0000" and the nine digits of m, as a 120-bit little-endian number.
	lo = 0x303030302e30 | uint64(d0+'0')<<48 | ascii<<56
	hi := ascii >> 8
	// Drop the zeros and digits in front of the last -e digits but for two
	// bytes to hold "0.", or three for "-0.", and then put that in.
	neg := uint(u >> 31)
	sh := uint(13+e-int(neg)) * 8 // < 128
	olo := lo>>(sh&63) | hi<<1<<(63-sh&63)
	ohi := hi >> (sh & 63)
	if sh >= 64 {
		olo = ohi
	}
	if sh >= 64 {
		ohi = 0
	}
	negMask := -uint64(neg) // no branch: the sign is as unpredictable as it gets
	olo = olo&^(0xffff|0xff0000&negMask) | 0x2e30 ^ (0x2e30^0x2e302d)&negMask
	n := 2 + int(neg) - e - trail

	l := len(b)
	if cap(b)-l < 16 {
		b = slices.Grow(b, 16)
	}
	dst := (*[16]byte)(b[l : l+16]) // only dst[:n] is written
	if n >= 8 {
		binary.LittleEndian.PutUint64(dst[:], olo)
		ts := uint(n-8) & 7
		binary.LittleEndian.PutUint64(dst[ts:], olo>>(ts*8)|ohi<<1<<(63-ts*8))
	} else {
		for i := range n & 7 {
			dst[i] = byte(olo >> (8 * uint(i)))
		}
	}
	return b[:l+n]
}

// appendSpecial handles what AppendFloat32 leaves: zeros, powers of two
// (whose interval is lopsided), Inf and NaN.
func appendSpecial(b []byte, f float32) []byte {
	u := math.Float32bits(f)
	switch bq := int(u>>23) & 0xff; bq {
	case 0xff:
		return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	case 0:
		if u>>31 != 0 {
			return append(b, "-0"...)
		}
		return append(b, '0')
	default:
		m, e := toDecimal(bq-150, 1<<23)
		return format(b, u>>31, m, e)
	}
}

// expInfo holds what toDecimal derives from the exponent for a regular
// spacing, looked up by the biased exponent instead of computed (which
// would also take variable shifts, and registers, on amd64 without BMI2).
type expInfo struct {
	g        uint64 // g1(k) + 1
	dhi, dlo uint64 // g·2^(h+1), h = q + flog2pow10(-k) + 33
	h2       uint   // h + 2
	k        int    // flog10pow2(q)
}

var expTab = func() (tab [255]expInfo) {
	for bq := range tab {
		q := max(bq, 1) - 150
		k := flog10pow2(q)
		g := g1[k-kMin] + 1
		h := uint(q + flog2pow10(-k) + 33)
		tab[bq] = expInfo{g, g >> (63 - h), g << (h + 1), h + 2, k}
	}
	return tab
}()

// toDecimal returns the shortest decimal m·10^e that rounds to c·2^q, the
// closest one if there are several. It is figure 7 of the paper with the
// computations of its figure 9, as FloatToDecimal.toDecimal, except that a
// one-digit result is allowed (Java requires two digits) and ties are broken
// as strconv breaks them. AppendFloat32 uses it for powers of two.
func toDecimal(q int, c uint32) (uint32, int) {
	irregular := c == 1<<23 && q != -149
	out := uint64(c & 1)
	cb := uint64(c) << 2
	cbr := cb + 2
	cbl := cb - 2
	k := flog10pow2(q)
	if irregular {
		// The float below is closer than the one above.
		cbl = cb - 1
		k = flog10threeQuartersPow2(q)
	}
	h := uint(q+flog2pow10(-k)+33) & 63
	g := g1[k-kMin] + 1
	vb := rop(g, cb<<h)
	vbl := rop(g, cbl<<h)
	vbr := rop(g, cbr<<h)

	s := vb >> 2
	sp10 := 10 * (s / 10)
	tp10 := sp10 + 10
	upin := vbl+out <= sp10<<2
	wpin := tp10<<2+out <= vbr
	if upin != wpin {
		if upin {
			return uint32(sp10 / 10), k + 1
		}
		return uint32(tp10 / 10), k + 1
	}
	t := s + 1
	uin := vbl+out <= s<<2
	win := t<<2+out <= vbr
	if uin != win {
		if uin {
			return uint32(s), k
		}
		return uint32(t), k
	}
	// A tie goes to the even s, except between the closer neighbours of a
	// power of two (it happens only for 2^-12): strconv's Dragonbox applies
	// float64's tie exponent there and so always rounds that tie up.
	cmp := int64(vb) - int64(2*(s+t))
	if cmp < 0 || cmp == 0 && s&1 == 0 && !irregular {
		return uint32(s), k
	}
	return uint32(t), k
}

// rop is r_o' of the paper's appendix: g·cp·2^-95 rounded to odd, which keeps
// enough information to compare the interval ends exactly.
func rop(g, cp uint64) uint64 {
	x1, _ := bits.Mul64(g, cp)
	return x1>>31 | ((x1&0xffffffff)+0xffffffff)>>32
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// floor(log10(2^e)), floor(log10(3/4·2^e)) and floor(log2(10^e)), exact for
// far larger |e| than float32 needs (MathUtils in the JDK).
func flog10pow2(e int) int { return int(int64(e) * 661971961083 >> 41) }
func flog10threeQuartersPow2(e int) int {
	return int((int64(e)*661971961083 - 274743187321) >> 41)
}
func flog2pow10(e int) int { return int(int64(e) * 913124641741 >> 38) }

// digits9 returns the nine decimal digits of m < 10^9 (with leading zeros):
// d0, the first, and the other eight in ASCII, in text order from the lowest
// byte. y = m·ceil(2^57/10^8) holds d0 above bit 57 and the rest as a binary
// fraction below, which each multiplication by 100 shifts two digits up
// (J. Anhalt's method; the rounding error, below m·100^4 < 2^57 after the
// last step, never reaches the digits): four dependent steps instead of a
// division per digit. It is kept out of line: inlined into AppendFloat32 it
// measured about 3 ns slower per call, from register spills.
//
//go:noinline
func digits9(m uint32) (ascii uint64, d0 uint32) {
	const frac = 1<<57 - 1
	y := uint64(m) * 1441151881
	d0 = uint32(y >> 57)
	y = y & frac * 100
	ascii = uint64(pairs[y>>57])
	y = y & frac * 100
	ascii |= uint64(pairs[y>>57]) << 16
	y = y & frac * 100
	ascii |= uint64(pairs[y>>57]) << 32
	y = y & frac * 100
	ascii |= uint64(pairs[y>>57]) << 48
	return ascii, d0
}

// pairs[i] is i < 100 as two ASCII digits, the first in the low byte.
var pairs = func() (p [128]uint16) {
	for i := range 100 {
		p[i] = uint16('0'+i/10) | uint16('0'+i%10)<<8
	}
	return p
}()

// format renders m·10^e (0 < m < 10^9, trailing zeros allowed) as strconv's
// %g with shortest precision: %e when the decimal exponent is below -4 or at
// least 6 (eprec is 6 for shortest), %f otherwise.
func format(b []byte, neg uint32, m uint32, e int) []byte {
	ascii, d0 := digits9(m)
	bcd := ascii ^ 0x3030303030303030
	lead := bits.TrailingZeros64(uint64(d0)|bcd<<8) >> 3 // zeros leading the nine
	trail := bits.LeadingZeros64(bcd) >> 3               // zeros ending them
	dp := 9 - lead + e                                   // value = 0.ddd × 10^dp
	nsig := 9 - lead - trail

	// The nine digits as a 72-bit little-endian number, then without the
	// leading zeros.
	dlo := uint64(d0+'0') | ascii<<8
	dhi := ascii >> 56
	sh := uint(lead) * 8
	slo := dlo>>sh | dhi<<(64-sh)
	shi := dhi >> sh

	// buf[0] is the sign; the number starts at buf[1].
	var buf [32]byte
	buf[0] = '-'
	var end int
	switch x := dp - 1; {
	case x < -4 || x >= 6:
		binary.LittleEndian.PutUint64(buf[2:], slo)
		buf[10] = byte(shi)
		buf[1] = byte(slo)
		end = 2
		if nsig > 1 {
			buf[2] = '.'
			end = nsig + 2
		}
		buf[end] = 'e'
		buf[end+1] = '+'
		if x < 0 {
			buf[end+1] = '-'
			x = -x
		}
		binary.LittleEndian.PutUint16(buf[end+2:], pairs[x])
		end += 4
	case dp <= 0:
		// 0.000ddd: -dp zeros after the point.
		binary.LittleEndian.PutUint64(buf[1:], 0x303030302e30)
		binary.LittleEndian.PutUint64(buf[3-dp:], slo)
		buf[11-dp] = byte(shi)
		end = 3 - dp + nsig
	case dp >= nsig:
		// An integer: pad with zeros.
		binary.LittleEndian.PutUint64(buf[1:], slo)
		binary.LittleEndian.PutUint64(buf[1+nsig:], 0x3030303030303030)
		end = 1 + dp
	default:
		// ddd.ddd: the first dp digits, '.', the rest.
		binary.LittleEndian.PutUint64(buf[1:], slo)
		buf[1+dp] = '.'
		binary.LittleEndian.PutUint64(buf[2+dp:], slo>>(8*uint(dp))|shi<<(64-8*uint(dp)))
		end = nsig + 2
	}
	return append(b, buf[1-neg:end]...)
}
