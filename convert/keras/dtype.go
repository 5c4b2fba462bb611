// HDF5 element types to export dtypes, and the stream that turns stored
// elements into the little-endian values convert.Checkpoint promises.
package keras

import (
	"fmt"
	"io"

	"ckpt2csv/convert"
	"ckpt2csv/convert/keras/internal/hdf5"
)

// element says how a dataset's stored elements become exported values.
type element struct {
	dtype convert.DType
	swap  bool // stored big-endian
	bool  bool // normalise to 0/1
}

// dtypeOf maps an HDF5 datatype to an export dtype; a non-empty reason
// means the dataset is skipped. tag is the dataset's Keras "dtype" attribute
// (Keras 3 marks bfloat16 data, which h5py stores as 2-byte opaque, this way).
func dtypeOf(t *hdf5.Datatype, tag string) (element, string) {
	switch t.Class {
	case hdf5.ClassFixed:
		if int(t.Precision) != 8*t.Size || t.BitOffset != 0 {
			return element{}, fmt.Sprintf("%d-bit integers packed in %d bytes are not exported", t.Precision, t.Size)
		}
		var d convert.DType
		switch {
		case t.Size == 1 && t.Signed:
			d = convert.Int8
		case t.Size == 1:
			d = convert.Uint8
		case t.Size == 2 && t.Signed:
			d = convert.Int16
		case t.Size == 2:
			d = convert.Uint16
		case t.Size == 4 && t.Signed:
			d = convert.Int32
		case t.Size == 4:
			d = convert.Uint32
		case t.Size == 8 && t.Signed:
			d = convert.Int64
		case t.Size == 8:
			d = convert.Uint64
		default:
			return element{}, fmt.Sprintf("%d-byte integers are not exported", t.Size)
		}
		return element{dtype: d, swap: t.BigEndian && t.Size > 1}, ""
	case hdf5.ClassFloat:
		d := floatDType(t)
		if d == "" {
			return element{}, fmt.Sprintf("a %d-byte float with a %d-bit exponent and %d-bit mantissa is not exported", t.Size, t.ExpSize, t.MantSize)
		}
		return element{dtype: d, swap: t.BigEndian && t.Size > 1}, ""
	case hdf5.ClassEnum:
		// h5py stores numpy bool as an enum {FALSE: 0, TRUE: 1} of int8.
		b := t.Base
		if b != nil && b.Class == hdf5.ClassFixed && b.Size == 1 && len(t.EnumNames) == 2 &&
			t.EnumNames[0] == "FALSE" && t.EnumNames[1] == "TRUE" {
			return element{dtype: convert.Bool, bool: true}, ""
		}
		if b != nil && b.Class == hdf5.ClassFixed {
			return dtypeOf(b, "")
		}
		return element{}, "enum values are not exported"
	case hdf5.ClassOpaque:
		if d := convert.DType(tag); d.Native() && d.Size() == t.Size {
			return element{dtype: d}, ""
		}
		return element{}, fmt.Sprintf("opaque %d-byte values (%q) are not exported", t.Size, t.Tag)
	case hdf5.ClassString, hdf5.ClassVlen:
		return element{}, "strings are not exported"
	case hdf5.ClassCompound:
		return element{}, "compound values (complex numbers, records) are not exported"
	}
	return element{}, fmt.Sprintf("%s values are not exported", t)
}

// floatDType recognises IEEE binary16/32/64 and bfloat16 by their bit layout.
func floatDType(t *hdf5.Datatype) convert.DType {
	std := func(exp, mant int, bias uint32) bool {
		return t.ExpSize == exp && t.MantSize == mant && t.MantPos == 0 && t.ExpPos == mant &&
			t.SignPos == 8*t.Size-1 && t.ExpBias == bias && t.BitOffset == 0 && int(t.Precision) == 8*t.Size
	}
	switch {
	case t.Size == 8 && std(11, 52, 1023):
		return convert.Float64
	case t.Size == 4 && std(8, 23, 127):
		return convert.Float32
	case t.Size == 2 && std(5, 10, 15):
		return convert.Float16
	case t.Size == 2 && std(8, 7, 127):
		return convert.BFloat16
	}
	return ""
}

// valueStream converts stored elements to little-endian values in place.
type valueStream struct {
	r     io.ReadCloser
	el    element
	size  int
	buf   []byte
	head  int // start of unread converted bytes in buf
	tail  int // end of converted bytes
	carry int // bytes of a partial element after tail
	err   error
}

func newValueStream(r io.ReadCloser, el element, size int) io.ReadCloser {
	if !el.swap && !el.bool {
		return r
	}
	return &valueStream{r: r, el: el, size: size, buf: make([]byte, 64<<10-(64<<10)%size)}
}

func (s *valueStream) Read(p []byte) (int, error) {
	for s.head == s.tail {
		if s.err != nil {
			if s.err == io.EOF && s.carry > 0 {
				return 0, convert.Invalidf("value stream ends inside an element")
			}
			return 0, s.err
		}
		// move a partial element to the front and refill
		copy(s.buf, s.buf[s.tail:s.tail+s.carry])
		n, err := s.r.Read(s.buf[s.carry:])
		s.err = err
		total := s.carry + n
		whole := total - total%s.size
		s.convert(s.buf[:whole])
		s.head, s.tail, s.carry = 0, whole, total-whole
	}
	n := copy(p, s.buf[s.head:s.tail])
	s.head += n
	return n, nil
}

func (s *valueStream) convert(b []byte) {
	switch {
	case s.el.bool:
		for i, v := range b {
			if v != 0 {
				b[i] = 1
			}
		}
	case s.el.swap:
		n := s.size
		for i := 0; i+n <= len(b); i += n {
			e := b[i : i+n]
			for j, k := 0, n-1; j < k; j, k = j+1, k-1 {
				e[j], e[k] = e[k], e[j]
			}
		}
	}
}

func (s *valueStream) Close() error { return s.r.Close() }
