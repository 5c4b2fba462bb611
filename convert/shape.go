package convert

import "math/bits"

// CheckedNumel multiplies a shape out, refusing negative dimensions and any
// product (or product times itemsize) that overflows int64. Readers call it on
// every shape read from a file before trusting it.
func CheckedNumel(shape []int64, itemsize int) (numel int64, err error) {
	if len(shape) > MaxRank {
		return 0, Invalidf("rank %d exceeds the limit of %d", len(shape), MaxRank)
	}
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, Invalidf("negative dimension %d in shape %v", d, shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return 0, Invalidf("shape %v has too many elements", shape)
		}
		n = lo
	}
	if hi, lo := bits.Mul64(n, uint64(max(itemsize, 1))); hi != 0 || lo > 1<<62 {
		return 0, Invalidf("shape %v is too large in bytes", shape)
	}
	return int64(n), nil
}

// MaxRank bounds tensor rank; no framework allows more than 64 dimensions.
const MaxRank = 64
