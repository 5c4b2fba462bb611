// Streaming a tensor's values: storage bytes from wherever the walk found
// them (raw_data or external data by range read, a typed repeated field by
// walking its message again), then decoding for the types that widen to
// float32, then, for sparse tensors, expansion to the dense C-order values.
// Each stream holds a small window and a few buffers, never the tensor.

package onnx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

// values streams e's logical values.
func (c *checkpoint) values(ctx context.Context, e *entry) (io.ReadCloser, error) {
	if e.kind == kindSparse {
		return c.sparse(ctx, e)
	}
	rc, err := c.storage(ctx, e)
	if err != nil {
		return nil, err
	}
	switch {
	case e.typ.tab8 != nil:
		return newDecoder(rc, e.numel, 8, e.typ.tab8[:]), nil
	case e.typ.tabN != nil:
		return newDecoder(rc, e.numel, e.typ.bits, e.typ.tabN[:]), nil
	}
	return rc, nil
}

// storage streams e's bytes in raw_data layout.
func (c *checkpoint) storage(ctx context.Context, e *entry) (io.ReadCloser, error) {
	switch e.kind {
	case kindEmpty:
		return io.NopCloser(bytes.NewReader(nil)), nil
	case kindInline:
		return io.NopCloser(bytes.NewReader(e.inline)), nil
	case kindRaw:
		return convert.Section(c.src, e.off, e.n), nil
	case kindExternal:
		c.mu.Lock()
		f := c.ext[e.loc]
		c.mu.Unlock()
		if f != nil && f.src != nil {
			return convert.Section(f.src, e.off, e.n), nil
		}
		src, err := c.openExt(ctx, e.loc)
		if err != nil {
			return nil, err
		}
		return &closing{convert.Section(src, e.off, e.n), src}, nil
	case kindField:
		w := newWire(c.src, c.src.Size())
		w.pos = e.msgOff
		return &fieldReader{w: w, end: e.msgEnd, field: e.field, elem: e.elem, unit: e.typ.unit(), left: e.typ.storageBytes(e.numel) / int64(e.typ.unit())}, nil
	}
	return nil, convert.Invalidf("no data")
}

// closing closes a source opened for one stream along with it.
type closing struct {
	io.ReadCloser
	src convert.Source
}

func (c *closing) Close() error {
	closeSource(c.src)
	return c.ReadCloser.Close()
}

// fieldReader streams the elements of one repeated numeric field of a
// message, packed or unpacked or both, as little-endian storage units.
type fieldReader struct {
	w      *wire
	end    int64 // end of the message
	field  protowire.Number
	elem   protowire.Type // Varint, Fixed32 or Fixed64
	unit   int            // storage bytes per element
	left   int64          // elements still to stream
	runEnd int64          // end of the packed run being read
	buf    [8]byte
	pend   []byte
}

func (r *fieldReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.pend) > 0 {
			k := copy(p[n:], r.pend)
			r.pend = r.pend[k:]
			n += k
			continue
		}
		if r.left == 0 {
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if k, err := r.copyRun(p[n:]); err != nil || k > 0 {
			n += k
			if err != nil {
				return n, err
			}
			continue
		}
		v, err := r.next()
		if err != nil {
			return n, err
		}
		r.left--
		binary.LittleEndian.PutUint64(r.buf[:], v)
		if len(p)-n >= r.unit {
			copy(p[n:], r.buf[:r.unit])
			n += r.unit
		} else {
			r.pend = r.buf[:r.unit]
		}
	}
	return n, nil
}

// copyRun copies whole elements of a packed fixed-width run straight from
// the window when they are already in storage layout (float_data, double_data).
func (r *fieldReader) copyRun(p []byte) (int, error) {
	size := 4
	switch {
	case r.elem == protowire.Fixed64Type:
		size = 8
	case r.elem != protowire.Fixed32Type:
		return 0, nil
	}
	if size != r.unit || r.w.pos >= r.runEnd || len(p) < size {
		return 0, nil
	}
	b, err := r.w.avail(size)
	if err != nil {
		return 0, err
	}
	k := min(int64(len(p)), int64(len(b)), r.runEnd-r.w.pos, r.left*int64(size))
	k -= k % int64(size)
	copy(p, b[:k])
	r.w.pos += k
	r.left -= k / int64(size)
	return int(k), nil
}

func (r *fieldReader) next() (uint64, error) {
	for {
		if r.w.pos < r.runEnd {
			switch r.elem {
			case protowire.VarintType:
				return r.w.varint(r.runEnd)
			case protowire.Fixed32Type:
				return r.w.fixed(r.runEnd, 4)
			default:
				return r.w.fixed(r.runEnd, 8)
			}
		}
		if r.w.pos >= r.end {
			return 0, convert.Invalidf("field %d ends %d values short", r.field, r.left)
		}
		f, err := r.w.next(r.end)
		if err != nil {
			return 0, err
		}
		switch {
		case f.num != r.field:
		case f.typ == protowire.BytesType:
			r.w.pos, r.runEnd = f.off, f.off+f.n
		case f.typ == r.elem:
			return f.v, nil
		default:
			return 0, f.want(r.elem, "data")
		}
	}
}

func (r *fieldReader) Close() error { return nil }

// decoder widens 8-, 4- and 2-bit storage to float32 values through a table.
type decoder struct {
	src  io.ReadCloser
	left int64 // values still to emit
	bits int
	tab  []float32
	in   []byte
	out  []byte
	pend []byte
}

func newDecoder(src io.ReadCloser, numel int64, bits int, tab []float32) *decoder {
	const chunk = 4096
	return &decoder{src: src, left: numel, bits: bits, tab: tab, in: make([]byte, chunk), out: make([]byte, chunk*(8/bits)*4)}
}

func (d *decoder) Read(p []byte) (int, error) {
	for len(d.pend) == 0 {
		if d.left == 0 {
			return 0, io.EOF
		}
		per := int64(8 / d.bits)
		want := min(int64(len(d.in)), (d.left+per-1)/per)
		n, err := io.ReadFull(d.src, d.in[:want])
		if err != nil {
			return 0, shortData(err)
		}
		o := 0
		mask := byte(1)<<d.bits - 1
		for _, b := range d.in[:n] {
			for k := 0; k < int(per) && d.left > 0; k++ {
				binary.LittleEndian.PutUint32(d.out[o:], math.Float32bits(d.tab[(b>>(k*d.bits))&mask]))
				o += 4
				d.left--
			}
		}
		d.pend = d.out[:o]
	}
	k := copy(p, d.pend)
	d.pend = d.pend[k:]
	return k, nil
}

func (d *decoder) Close() error { return d.src.Close() }

// shortData turns an early end of a stream into ErrInvalid.
func shortData(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return convert.Invalidf("data ends early")
	}
	return err
}

// sparse expands a sparse tensor: zeros, with each stored value at its index.
// Indices must ascend strictly (onnx.proto), so one pass suffices.
func (c *checkpoint) sparse(ctx context.Context, e *entry) (io.ReadCloser, error) {
	vals, err := c.values(ctx, e.vals)
	if err != nil {
		return nil, err
	}
	s := &sparseReader{vals: vals, vsize: e.typ.dtype.Size(), numel: e.numel, left: e.vals.numel, dims: e.dims, next: -1}
	if e.idx != nil {
		if s.idx, err = c.values(ctx, e.idx); err != nil {
			vals.Close()
			return nil, err
		}
		s.rank = 1
		if e.coords {
			s.rank = len(e.dims)
		}
		s.ib = make([]byte, 8*s.rank)
	}
	s.out = make([]byte, 16<<10)
	return s, nil
}

type sparseReader struct {
	vals, idx io.ReadCloser
	vsize     int
	numel     int64
	pos       int64 // next dense index to emit
	next      int64 // dense index of the value held in val; -1 before the first
	left      int64 // stored values not yet read
	dims      []int64
	rank      int
	ib        []byte
	val       [8]byte
	out, pend []byte
}

// advance reads the next stored value and its index.
func (s *sparseReader) advance() error {
	if s.left == 0 {
		s.next = s.numel
		return nil
	}
	s.left--
	if _, err := io.ReadFull(s.idx, s.ib); err != nil {
		return shortData(err)
	}
	var lin int64
	if s.rank == 1 && len(s.dims) != 1 {
		lin = int64(binary.LittleEndian.Uint64(s.ib))
		if lin < 0 || lin >= s.numel {
			return convert.Invalidf("sparse index %d is outside the %d values", lin, s.numel)
		}
	} else {
		for j, d := range s.dims {
			k := int64(binary.LittleEndian.Uint64(s.ib[8*j:]))
			if k < 0 || k >= d {
				return convert.Invalidf("sparse index %d is outside dimension %d of size %d", k, j, d)
			}
			lin = lin*d + k
		}
	}
	if lin < s.pos {
		return convert.Invalidf("sparse indices are not in ascending order at index %d", lin)
	}
	if _, err := io.ReadFull(s.vals, s.val[:s.vsize]); err != nil {
		return shortData(err)
	}
	s.next = lin
	return nil
}

func (s *sparseReader) Read(p []byte) (int, error) {
	if len(s.pend) == 0 {
		if s.next < 0 {
			if err := s.advance(); err != nil {
				return 0, err
			}
		}
		if s.pos == s.numel {
			return 0, io.EOF
		}
		o := 0
		for o+s.vsize <= len(s.out) && s.pos < s.numel {
			if s.pos < s.next {
				k := min(s.next-s.pos, int64((len(s.out)-o)/s.vsize))
				clear(s.out[o : o+int(k)*s.vsize])
				o += int(k) * s.vsize
				s.pos += k
				continue
			}
			copy(s.out[o:], s.val[:s.vsize])
			o += s.vsize
			s.pos++
			if err := s.advance(); err != nil {
				return 0, err
			}
		}
		s.pend = s.out[:o]
	}
	k := copy(p, s.pend)
	s.pend = s.pend[k:]
	return k, nil
}

func (s *sparseReader) Close() error {
	s.vals.Close()
	if s.idx != nil {
		s.idx.Close()
	}
	return nil
}
