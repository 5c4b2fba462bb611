// Streaming one exported array's values: a numpy array's raw bytes (inline in
// the pickle, or after a joblib NumpyArrayWrapper) turned into C-order,
// little-endian values. Fortran order goes through convert.Strided; a field of
// a structured array (a decision tree's nodes) is read as a virtual array over
// the records; big-endian data is swapped as it streams. Memory stays bounded
// by the read windows, whatever the array size.
package sklearn

import (
	"context"
	"io"

	"ckpt2csv/convert"
)

// layout locates one tensor's values.
type layout struct {
	region   convert.SizedReaderAt // the array's bytes: count records of recSize
	count    int64                 // records (elements of the numpy array)
	recSize  int64                 // bytes per record: the array's itemsize
	fieldOff int64                 // the value's offset in its record (structured fields)
	elem     int                   // bytes per value
	shape    []int64               // the numpy array's shape
	sub      []int64               // a structured field's subarray shape, appended to shape
	fortran  bool                  // records are in Fortran order
	swap     bool                  // big-endian values
	boolean  bool                  // normalise to 0/1
	npy      convert.Checkpoint    // or: the one array of this .npy checkpoint
}

// open streams the values.
func (l *layout) open(ctx context.Context) (io.ReadCloser, error) {
	if l.npy != nil {
		return l.npy.Values(ctx, 0)
	}
	subN := int64(1)
	for _, d := range l.sub {
		subN *= d
	}
	full := append(append([]int64(nil), l.shape...), l.sub...)
	numel, err := convert.CheckedNumel(full, l.elem)
	if err != nil {
		return nil, err
	}
	if numel == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	var region convert.SizedReaderAt = l.region
	if l.fieldOff != 0 || l.recSize != int64(l.elem)*subN {
		region = &fieldReader{r: l.region, count: l.count, recSize: l.recSize, off: l.fieldOff, size: int64(l.elem) * subN}
	}
	// Element strides of the virtual contiguous array region holds:
	// records in C or Fortran order, each record's subarray in C order.
	strides := make([]int64, len(full))
	acc := int64(1)
	for k := len(full) - 1; k >= len(l.shape); k-- {
		strides[k] = acc
		acc *= full[k]
	}
	if l.fortran {
		for k := 0; k < len(l.shape); k++ {
			strides[k] = acc
			acc *= l.shape[k]
		}
	} else {
		for k := len(l.shape) - 1; k >= 0; k-- {
			strides[k] = acc
			acc *= l.shape[k]
		}
	}
	rc, err := convert.OpenStrided(region, 0, l.elem, full, strides)
	if err != nil {
		return nil, err
	}
	if l.swap {
		rc = convert.ByteSwapped(rc, l.elem)
	}
	if l.boolean {
		rc = boolReader{rc}
	}
	return rc, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// fieldReader shows one field of every record as a contiguous array.
type fieldReader struct {
	r                   io.ReaderAt
	count, recSize, off int64
	size                int64 // bytes of the field in each record
	buf                 []byte
}

func (f *fieldReader) Size() int64 { return f.count * f.size }

// ReadAt reads whole runs of records at a time and copies the field out of each.
func (f *fieldReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, convert.Invalidf("negative offset")
	}
	if off >= f.Size() {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < f.Size() {
		rec, in := off/f.size, off%f.size
		recs := min(max(int64(1<<20)/f.recSize, 1), f.count-rec, (int64(len(p)-n)+in+f.size-1)/f.size)
		if need := int(recs * f.recSize); cap(f.buf) < need {
			f.buf = make([]byte, need)
		}
		buf := f.buf[:recs*f.recSize]
		if _, err := f.r.ReadAt(buf, rec*f.recSize); err != nil && err != io.EOF {
			return n, err
		} else if err == io.EOF {
			return n, convert.Invalidf("structured array data ends early")
		}
		for i := int64(0); i < recs && n < len(p); i++ {
			field := buf[i*f.recSize+f.off : i*f.recSize+f.off+f.size]
			k := copy(p[n:], field[in:])
			n += k
			off += int64(k)
			in = 0
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// boolReader normalises bools to 0/1 as they stream (numpy reads any nonzero byte as True).
type boolReader struct{ rc io.ReadCloser }

func (b boolReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	for i, c := range p[:n] {
		if c > 1 {
			p[i] = 1
		}
	}
	return n, err
}

func (b boolReader) Close() error { return b.rc.Close() }
