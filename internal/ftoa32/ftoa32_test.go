package ftoa32

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func want(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }

// check compares one value with strconv. It appends to a prefix in a buffer
// with room to spare, so that it also catches a write before the appended
// bytes or past them.
func check(t testing.TB, f float32) {
	t.Helper()
	var buf [64]byte
	for i := range buf {
		buf[i] = '#'
	}
	got := AppendFloat32(append(buf[:0], 'x'), f)
	rest := buf[len(got):]
	if string(got[1:]) != want(f) || got[0] != 'x' || strings.Trim(string(rest), "#") != "" {
		t.Fatalf("AppendFloat32(%#08x) = %q, strconv %q (buffer %q)", math.Float32bits(f), got[1:], want(f), buf)
	}
}

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want string
	}{
		{0, "0"},
		{float32(math.Copysign(0, -1)), "-0"},
		{math.Float32frombits(1), "1e-45"},
		{-math.Float32frombits(1), "-1e-45"},
		{math.Float32frombits(2), "3e-45"},
		{math.Float32frombits(7), "1e-44"},
		{math.Float32frombits(8), "1.1e-44"},
		{math.Float32frombits(0x007fffff), "1.1754942e-38"}, // largest subnormal
		{0x1p-126, "1.1754944e-38"},                         // MinNormal
		{math.MaxFloat32, "3.4028235e+38"},
		{-math.MaxFloat32, "-3.4028235e+38"},
		{1, "1"},
		{-1, "-1"},
		{2, "2"},
		{0.5, "0.5"},
		{0.25, "0.25"},
		{0x1p-10, "0.0009765625"},
		{0x1p-20, "9.536743e-07"},
		{0x1p20, "1.048576e+06"},
		{0x1p100, "1.2676506e+30"},
		{10, "10"},
		{100, "100"},
		{1e5, "100000"},
		{999999, "999999"},
		{1e6, "1e+06"},
		{1.5e6, "1.5e+06"},
		{1e7, "1e+07"},
		{9999999, "9.999999e+06"},
		{16777216, "1.6777216e+07"},
		{16777217, "1.6777216e+07"},
		{16777218, "1.6777218e+07"},
		{8388608, "8.388608e+06"},
		{123456.7, "123456.7"},
		{1e-4, "0.0001"},
		{math.Float32frombits(0x38d1b716), "9.999999e-05"}, // below float32(1e-4)
		{-1e-4, "-0.0001"},
		{math.Float32frombits(0x3f7fffff), "0.99999994"}, // below 1
		{-0.5, "-0.5"},
		{0.05, "0.05"},
		{-0.00123, "-0.00123"},
		{0.000123456789, "0.00012345679"},
		{1.2345e-4, "0.00012345"},
		{9.999e-5, "9.999e-05"},
		{1e-5, "1e-05"},
		{1.2345e-5, "1.2345e-05"},
		{0.1, "0.1"},
		{0.2, "0.2"},
		{0.3, "0.3"},
		{0.1 + 0.2, "0.3"},
		{1.0 / 3, "0.33333334"},
		{2.0 / 3, "0.6666667"},
		{3.1415927, "3.1415927"},
		{0.012345678, "0.012345678"},
		{-0.0049122, "-0.0049122"},
		{1e38, "1e+38"},
		{1e-38, "1e-38"},
		{1e-45, "1e-45"},
		{1e-10, "1e-10"},
		{1e10, "1e+10"},
		{123.456, "123.456"},
		{0x1p-149 * 0x1p23, "1.1754944e-38"},
		// c == 1<<23: powers of two, where the float below is closer.
		{0x1p-125, "2.3509887e-38"},
		{0x1p-12, "0.00024414063"}, // a tie strconv rounds up, not to even
		{-0x1p-12, "-0.00024414063"},
		{0x1p-100, "7.888609e-31"},
		{0x1p-50, "8.881784e-16"},
		{0x1p-30, "9.313226e-10"},
		{0x1p30, "1.0737418e+09"},
		{0x1p64, "1.8446744e+19"},
		{0x1p127, "1.7014118e+38"},
	} {
		got := string(AppendFloat32(nil, tc.f))
		if got != tc.want || got != want(tc.f) {
			t.Errorf("%#08x: got %q, want %q (strconv %q)", math.Float32bits(tc.f), got, tc.want, want(tc.f))
		}
	}
}

func TestSpecialFallBack(t *testing.T) {
	for _, f := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())} {
		check(t, f)
	}
}

// TestRandomAndRanges compares with strconv on random bit patterns and on
// every value of some dense ranges.
func TestRandomAndRanges(t *testing.T) {
	n := 3_000_000
	step := uint32(1)
	if testing.Short() || raceEnabled {
		n, step = 200_000, 61
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		u := r.Uint32()
		if u&0x7f800000 == 0x7f800000 {
			continue
		}
		check(t, math.Float32frombits(u))
	}
	for _, rg := range []struct{ lo, hi, step uint32 }{
		{0, 1 << 20, step},                          // subnormals below 2^20 ulps
		{0x007ff000, 0x00801000, 1},                 // around MinNormal
		{0x3f800000, 0x40000000, 7 * step},          // [1, 2), every 7th
		{0x38d1b717 - 1<<16, 0x38d1b717 + 1<<16, 1}, // around 1e-4
		{0x49742400 - 1<<16, 0x49742400 + 1<<16, 1}, // around 1e6
		{0x7f7fffff - 1<<16, 0x7f7fffff, 1},         // up to MaxFloat32
		{0x3c000000, 0x3e000000, 97 * step},         // typical weights
	} {
		for u := rg.lo; u < rg.hi; u += rg.step {
			check(t, math.Float32frombits(u))
			check(t, -math.Float32frombits(u))
		}
	}
	// Every power of two and the floats next to it.
	for u := uint32(0); u < 0xff<<23; u += 1 << 23 {
		for _, v := range []uint32{u, u + 1, u - 1} {
			if v < 0x7f800000 {
				check(t, math.Float32frombits(v))
			}
		}
	}
}

// TestExhaustive checks all 2^32 bit patterns; it takes a few minutes.
func TestExhaustive(t *testing.T) {
	if os.Getenv("FTOA32_EXHAUSTIVE") == "" {
		t.Skip("set FTOA32_EXHAUSTIVE=1 to check all 2^32 float32 values")
	}
	start := time.Now()
	const chunk = 1 << 20
	var next atomic.Uint64
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var got, exp []byte
			for {
				lo := next.Add(chunk) - chunk
				if lo >= 1<<32 || failures.Load() > 10 {
					return
				}
				for u := lo; u < lo+chunk; u++ {
					f := math.Float32frombits(uint32(u))
					got = AppendFloat32(got[:0], f)
					exp = strconv.AppendFloat(exp[:0], float64(f), 'g', -1, 32)
					if string(got) != string(exp) {
						failures.Add(1)
						t.Errorf("%#08x: got %q, strconv %q", u, got, exp)
					}
				}
			}
		})
	}
	wg.Wait()
	t.Logf("checked 2^32 values on %d threads in %v", runtime.GOMAXPROCS(0), time.Since(start).Round(time.Second))
}

func FuzzAppendFloat32(f *testing.F) {
	for _, u := range []uint32{0, 1, 0x007fffff, 0x00800000, 0x3f800000, 0x3dcccccd, 0x4b800000, 0x7f7fffff, 0x80000000, 0xbc4a0000} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u uint32) {
		check(t, math.Float32frombits(u))
	})
}

// TestG1 recomputes the table with math/big: g1(k) = floor(g/2^63) where
// g = floor(β)+1 and 10^-k = β·2^r, 2^125 <= β < 2^126.
func TestG1(t *testing.T) {
	for k := kMin; k <= kMax; k++ {
		// β·2^r = 10^-k with r = flog2pow10(-k) - 125.
		r := flog2pow10(-k) - 125
		beta := new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil))
		if k <= 0 {
			beta.SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-k)), nil))
		}
		p := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(abs(r))))
		if r >= 0 {
			beta.Quo(beta, p)
		} else {
			beta.Mul(beta, p)
		}
		lo := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 125))
		hi := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 126))
		if beta.Cmp(lo) < 0 || beta.Cmp(hi) >= 0 {
			t.Fatalf("k=%d: β out of [2^125, 2^126)", k)
		}
		g := new(big.Int).Quo(beta.Num(), beta.Denom())
		g.Add(g, big.NewInt(1))
		g.Rsh(g, 63)
		if !g.IsUint64() || g.Uint64() != g1[k-kMin] {
			t.Errorf("g1(%d) = %#x, want %#x", k, g1[k-kMin], g)
		}
	}
	// Spot checks against the JDK's MathUtils table.
	for k, v := range map[int]uint64{-38: 0x4B3B4CA85A86C47A, -1: 0x5000000000000000, 0: 0x4000000000000000, 1: 0x6666666666666666, 31: 0x40E7599625A1FE7A} {
		if g1[k-kMin] != v {
			t.Errorf("g1(%d) = %#x, JDK has %#x", k, g1[k-kMin], v)
		}
	}
	// The table covers every k a float32 needs.
	for q := -149; q <= 104; q++ {
		for _, k := range []int{flog10pow2(q), flog10threeQuartersPow2(q)} {
			if k < kMin || k > kMax {
				t.Errorf("q=%d needs k=%d outside [%d, %d]", q, k, kMin, kMax)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestDigits9 checks the digit extraction against a decimal counter: on
// every m < 10^9 when FTOA32_EXHAUSTIVE is set (AppendFloat32 passes it
// m < 2^28), on m < 10^6 and a sample of the rest otherwise.
func TestDigits9(t *testing.T) {
	check := func(m uint32, want []byte) {
		ascii, d0 := digits9(m)
		got := [9]byte{byte(d0) + '0'}
		binary.LittleEndian.PutUint64(got[1:], ascii)
		if string(got[:]) != string(want) {
			t.Fatalf("digits9(%d) = %q, want %q", m, got, want)
		}
	}
	if os.Getenv("FTOA32_EXHAUSTIVE") == "" {
		for m := uint32(0); m < 1e9; m += 9973 {
			check(m, fmt.Appendf(nil, "%09d", m))
		}
	}
	end := uint32(1e6)
	if os.Getenv("FTOA32_EXHAUSTIVE") != "" {
		end = 1e9
	}
	want := []byte("000000000")
	for m := uint32(0); m < end; m++ {
		check(m, want)
		for i := 8; i >= 0; i-- { // want++
			if want[i]++; want[i] <= '9' {
				break
			}
			want[i] = '0'
		}
	}
}

// TestFlog checks the logarithm approximations against math/big over the
// exponents a float32 has.
func TestFlog(t *testing.T) {
	pow := func(b, e int) *big.Rat {
		p := new(big.Int).Exp(big.NewInt(int64(b)), big.NewInt(int64(abs(e))), nil)
		r := new(big.Rat).SetInt(p)
		if e < 0 {
			r.Inv(r)
		}
		return r
	}
	// floorLog returns the k with base^k <= x < base^(k+1).
	floorLog := func(x *big.Rat, base int) int {
		k := 0
		for x.Cmp(pow(base, k)) < 0 {
			k--
		}
		for x.Cmp(pow(base, k+1)) >= 0 {
			k++
		}
		return k
	}
	for q := -149; q <= 104; q++ {
		p2 := pow(2, q)
		if got, want := flog10pow2(q), floorLog(p2, 10); got != want {
			t.Errorf("flog10pow2(%d) = %d, want %d", q, got, want)
		}
		tq := new(big.Rat).Mul(p2, big.NewRat(3, 4))
		if got, want := flog10threeQuartersPow2(q), floorLog(tq, 10); got != want {
			t.Errorf("flog10threeQuartersPow2(%d) = %d, want %d", q, got, want)
		}
	}
	for k := kMin; k <= kMax; k++ {
		if got, want := flog2pow10(-k), floorLog(pow(10, -k), 2); got != want {
			t.Errorf("flog2pow10(%d) = %d, want %d", -k, got, want)
		}
	}
}

// weights are float32 as in a trained network: normal, sigma 0.05.
func weights() []float32 {
	r := rand.New(rand.NewPCG(42, 0))
	w := make([]float32, 1<<18) // too many for branch predictors to learn
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.05)
	}
	return w
}

func BenchmarkAppendFloat32(b *testing.B) {
	w := weights()
	buf := make([]byte, 0, 64)
	i := 0
	for b.Loop() {
		buf = AppendFloat32(buf[:0], w[i&(len(w)-1)])
		i++
	}
}

func BenchmarkStrconv(b *testing.B) {
	w := weights()
	buf := make([]byte, 0, 64)
	i := 0
	for b.Loop() {
		buf = strconv.AppendFloat(buf[:0], float64(w[i&(len(w)-1)]), 'g', -1, 32)
		i++
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	w := weights()
	if n := testing.AllocsPerRun(100, func() {
		for _, f := range w[:64] {
			buf = AppendFloat32(buf[:0], f)
		}
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}
