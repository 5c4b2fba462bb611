// Fortran-order arrays streamed in C order.

package numpyobj

import (
	"io"

	"ckpt2csv/convert"
)

// maxFortranInMemory bounds the Fortran-order arrays transposed in memory.
const maxFortranInMemory = 256 << 20

// newFortranReader streams a Fortran-order array in C order.
func newFortranReader(r io.ReaderAt, shape []int64, size int) io.Reader {
	n, _ := convert.CheckedNumel(shape, size)
	total := n * int64(size)
	if total > maxFortranInMemory {
		return errReader{convert.Invalidf("Fortran-order array of %d bytes is larger than the %d bytes transposed in memory", total, maxFortranInMemory)}
	}
	src := make([]byte, total)
	if _, err := r.ReadAt(src, 0); err != nil && !(err == io.EOF && total == 0) {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = convert.Invalidf("array data ends early")
		}
		return errReader{err}
	}
	dst := make([]byte, total)
	// F strides (in elements): stride[k] = prod(shape[:k])
	rank := len(shape)
	stride := make([]int64, rank)
	s := int64(1)
	for k := 0; k < rank; k++ {
		stride[k] = s
		s *= shape[k]
	}
	idx := make([]int64, rank)
	var off int64 // F offset of idx, in elements
	for i := int64(0); i < n; i++ {
		copy(dst[i*int64(size):(i+1)*int64(size)], src[off*int64(size):(off+1)*int64(size)])
		for k := rank - 1; k >= 0; k-- {
			idx[k]++
			off += stride[k]
			if idx[k] < shape[k] {
				break
			}
			off -= stride[k] * idx[k]
			idx[k] = 0
		}
	}
	return &sliceReader{b: dst}
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
