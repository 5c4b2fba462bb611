package convert

// Tests of Strided against a naive gather, its bounds checks, read
// coalescing and memory.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naiveStrided is the reference: every element by its address, C order.
func naiveStrided(region []byte, base int64, isz int, shape, strides []int64) []byte {
	var out []byte
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	idx := make([]int64, len(shape))
	for e := int64(0); e < n; e++ {
		a := base
		for k := range shape {
			a += idx[k] * strides[k]
		}
		out = append(out, region[a*int64(isz):(a+1)*int64(isz)]...)
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

func contiguous(shape []int64) []int64 {
	st := make([]int64, len(shape))
	c := int64(1)
	for k := len(shape) - 1; k >= 0; k-- {
		st[k] = c
		c *= shape[k]
	}
	return st
}

func fortran(shape []int64) []int64 {
	st := make([]int64, len(shape))
	c := int64(1)
	for k := range shape {
		st[k] = c
		c *= shape[k]
	}
	return st
}

func randRegion(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// countingReaderAt counts ReadAt calls and bytes, to check reads coalesce.
type countingReaderAt struct {
	*bytes.Reader
	calls, bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	c.bytes += int64(len(p))
	return c.Reader.ReadAt(p, off)
}

func TestStridedMatchesNaive(t *testing.T) {
	region := randRegion(1 << 24)
	cases := []struct {
		name    string
		base    int64
		isz     int
		shape   []int64
		strides []int64
	}{
		{"contiguous", 0, 4, []int64{3, 4}, contiguous([]int64{3, 4})},
		{"scalar", 7, 8, nil, nil},
		{"offset", 5, 2, []int64{4, 6}, contiguous([]int64{4, 6})},
		{"transpose 2d", 0, 4, []int64{5, 3}, []int64{1, 5}},
		{"fortran 3d", 3, 8, []int64{4, 5, 6}, fortran([]int64{4, 5, 6})},
		{"fortran 4d", 0, 2, []int64{3, 1, 4, 5}, fortran([]int64{3, 1, 4, 5})},
		{"expand stride 0 inner", 2, 4, []int64{6, 7}, []int64{1, 0}},
		{"expand stride 0 outer", 2, 4, []int64{6, 7}, []int64{0, 1}},
		{"all stride 0", 9, 4, []int64{3, 5}, []int64{0, 0}},
		{"slice columns", 1, 4, []int64{10, 3}, []int64{20, 1}},
		{"every other element", 0, 1, []int64{5, 4}, []int64{16, 2}},
		{"channels_last", 0, 4, []int64{2, 8, 3, 3}, []int64{72, 1, 24, 8}},
		{"negative strides", 59, 4, []int64{4, 5}, []int64{-10, -2}},
		{"unit dims", 0, 4, []int64{1, 3, 1, 4, 1}, []int64{99, 4, 7, 1, 3}},
		{"large fortran", 0, 4, []int64{700, 900}, []int64{1, 700}},
		{"large fortran f8 narrow", 0, 8, []int64{3, 40000}, []int64{1, 3}},
		{"large transpose wide rest", 0, 4, []int64{1000, 2000}, []int64{1, 1000}},
		{"large channels_last", 0, 4, []int64{4, 64, 32, 32}, []int64{65536, 1, 2048, 64}},
		{"big gaps", 3, 4, []int64{50, 7}, []int64{20000, 1}},
		{"big strided gather", 0, 2, []int64{40, 30}, []int64{1, 40000}},
		{"empty", 0, 4, []int64{3, 0, 2}, []int64{0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := naiveStrided(region, c.base, c.isz, c.shape, c.strides)
			rc, err := OpenStrided(bytes.NewReader(region), c.base, c.isz, c.shape, c.strides)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			// Odd-sized reads exercise partial elements.
			var got []byte
			buf := make([]byte, 777)
			for {
				n, err := rc.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d; differ", len(got), len(want))
			}
		})
	}
}

func TestStridedRandomViews(t *testing.T) {
	region := randRegion(1 << 16)
	r := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 2000; it++ {
		rank := r.IntN(5)
		isz := []int{1, 2, 4, 8}[r.IntN(4)]
		shape := make([]int64, rank)
		strides := make([]int64, rank)
		for k := range shape {
			shape[k] = int64(r.IntN(6) + 1)
			strides[k] = int64(r.IntN(41) - 10)
		}
		base := int64(r.IntN(1 << 10))
		lo, hi := base, base
		for k := range shape {
			if strides[k] > 0 {
				hi += strides[k] * (shape[k] - 1)
			} else {
				lo += strides[k] * (shape[k] - 1)
			}
		}
		rc, err := OpenStrided(bytes.NewReader(region), base, isz, shape, strides)
		inRange := lo >= 0 && (hi+1)*int64(isz) <= int64(len(region))
		if !inRange {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("view %v/%v base %d: want ErrInvalid, got %v", shape, strides, base, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("view %v/%v base %d: %v", shape, strides, base, err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveStrided(region, base, isz, shape, strides); !bytes.Equal(got, want) {
			t.Fatalf("view %v/%v base %d isz %d: values differ", shape, strides, base, isz)
		}
	}
}

func TestStridedRefusesOutOfRange(t *testing.T) {
	region := make([]byte, 100) // 25 float32
	cases := []struct {
		name    string
		base    int64
		shape   []int64
		strides []int64
	}{
		{"past the end", 0, []int64{26}, []int64{1}},
		{"offset past the end", 20, []int64{2, 3}, []int64{3, 1}},
		{"negative base", -1, []int64{2}, []int64{1}},
		{"negative stride before start", 0, []int64{2}, []int64{-1}},
		{"huge stride", 0, []int64{2}, []int64{1 << 62}},
		{"overflowing stride", 0, []int64{3, 3}, []int64{1 << 62, 1 << 62}},
		{"negative dim", 0, []int64{-2}, []int64{1}},
		{"rank mismatch", 0, []int64{2, 2}, []int64{1}},
		{"scalar past the end", 25, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := OpenStrided(bytes.NewReader(region), c.base, 4, c.shape, c.strides)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			// Strided reports the same error from Read.
			_, err = io.ReadAll(Strided(bytes.NewReader(region), c.base, 4, c.shape, c.strides))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Read: want ErrInvalid, got %v", err)
			}
		})
	}
}

// shortReaderAt claims a size larger than the data it holds, like a file
// truncated after its size was taken.
type shortReaderAt struct{ *bytes.Reader }

func (s shortReaderAt) Size() int64 { return s.Reader.Size() * 2 }

func TestStridedShortRegionIsInvalid(t *testing.T) {
	region := shortReaderAt{bytes.NewReader(make([]byte, 64))}
	_, err := io.ReadAll(Strided(region, 0, 4, []int64{4, 8}, []int64{1, 4}))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
}

func TestStridedReadsCoalesce(t *testing.T) {
	region := randRegion(16 << 20)
	cases := []struct {
		shape, strides []int64
		maxCalls       int64
		maxAmplify     float64 // bytes read per byte of the view
	}{
		{[]int64{2048, 2048}, []int64{1, 2048}, 40, 2.01},                 // Fortran order 16 MiB float32: tiles of 1024 rows read half of each window
		{[]int64{16, 64, 64, 64}, []int64{262144, 1, 4096, 64}, 40, 1.01}, // channels_last
		{[]int64{4096, 512}, []int64{1024, 1}, 40, 2.1},                   // every other row of 512
		{[]int64{1000, 4096}, []int64{0, 1}, 2, 0.07},                     // expand
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.shape, c.strides), func(t *testing.T) {
			cr := &countingReaderAt{Reader: bytes.NewReader(region)}
			rc, err := OpenStrided(cr, 0, 4, c.shape, c.strides)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			if err != nil {
				t.Fatal(err)
			}
			amp := float64(cr.bytes) / float64(n)
			t.Logf("%d bytes out, %d ReadAt calls, %.2f bytes read per byte out", n, cr.calls, amp)
			if cr.calls > c.maxCalls || amp > c.maxAmplify {
				t.Fatalf("%d calls (max %d), amplification %.2f (max %.2f)", cr.calls, c.maxCalls, amp, c.maxAmplify)
			}
		})
	}
}

func BenchmarkStridedFortran(b *testing.B) {
	region := randRegion(64 << 20)
	b.SetBytes(64 << 20)
	for b.Loop() {
		rc, _ := OpenStrided(bytes.NewReader(region), 0, 4, []int64{4096, 4096}, []int64{1, 4096})
		io.Copy(io.Discard, rc)
	}
}

// Memory does not grow with the tensor: a 64 MiB transposed view streams
// through at most the window, one tile and the output buffer.
func TestStridedMemoryIsBounded(t *testing.T) {
	region := randRegion(64 << 20)
	for _, c := range []struct{ shape, strides []int64 }{
		{[]int64{4096, 4096}, []int64{1, 4096}},       // Fortran order
		{[]int64{4096, 4096}, []int64{4096, 1}},       // contiguous
		{[]int64{64, 4096, 64}, []int64{1, 64, 0}},    // expand
		{[]int64{2, 4096, 2048}, []int64{1, 2, 8192}}, // the stride-1 dim's tile is too big: tiles along dim 1
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rc, err := OpenStrided(bytes.NewReader(region), 0, 4, c.shape, c.strides)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, make([]byte, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%v/%v: %d MiB streamed, %.1f MiB allocated", c.shape, c.strides, n>>20, float64(alloc)/(1<<20))
		if alloc > 12<<20 {
			t.Errorf("%v/%v allocated %d bytes", c.shape, c.strides, alloc)
		}
	}
}

// FuzzStrided: any view either matches the naive gather or is refused with
// ErrInvalid before reading.
func FuzzStrided(f *testing.F) {
	f.Add([]byte{2, 4, 5, 3, 1, 5, 0})
	f.Add([]byte{3, 8, 4, 5, 6, 1, 4, 20, 3})
	f.Add([]byte{4, 4, 2, 8, 3, 3, 72, 1, 24, 8, 0})
	region := randRegion(1 << 14)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 3 {
			return
		}
		rank := int(b[0]) % 6
		isz := []int{1, 2, 4, 8, 3}[int(b[1])%5]
		b = b[2:]
		if len(b) < 2*rank+1 {
			return
		}
		shape := make([]int64, rank)
		strides := make([]int64, rank)
		for k := range shape {
			shape[k] = int64(b[k] % 9)
			strides[k] = int64(int8(b[rank+k]))
		}
		base := int64(b[2*rank]) * 7
		rc, err := OpenStrided(bytes.NewReader(region), base, isz, shape, strides)
		lo, hi, n := base, base, int64(1)
		for k := range shape {
			n *= shape[k]
			if shape[k] > 1 {
				if strides[k] > 0 {
					hi += strides[k] * (shape[k] - 1)
				} else {
					lo += strides[k] * (shape[k] - 1)
				}
			}
		}
		if n > 0 && (lo < 0 || (hi+1)*int64(isz) > int64(len(region))) {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("out-of-range view %v/%v base %d accepted: %v", shape, strides, base, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("view %v/%v base %d: %v", shape, strides, base, err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveStrided(region, base, isz, shape, strides); !bytes.Equal(got, want) {
			t.Fatalf("view %v/%v base %d isz %d differs", shape, strides, base, isz)
		}
	})
}
