// A forward protobuf reader over a Source's ReaderAt.
//
// An ONNX model is one protobuf message of up to 2 GB, most of it tensor
// bytes. Reading it whole (proto.Unmarshal) would hold the model in memory,
// so the walker reads tags, varints and short strings through a small window
// and skips long payloads, keeping only their (offset, length) so Values can
// stream them later with range reads. Memory stays bounded whatever the size
// of the model.
//
// Hand-written on google.golang.org/protobuf/encoding/protowire because the
// ONNX Go modules on the module proxy either keep their generated types in an
// internal package (owulveryck/onnx-go) or import gorgonia and a 2021 Arrow
// (advancedclimatesystems/gonnx), and both decode the whole message at once.

package onnx

import (
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

const windowSize = 64 << 10

// wire reads protobuf fields forward from pos. Every read is bounded by an
// end offset (the end of the enclosing message), never by trust in a length.
type wire struct {
	r    io.ReaderAt
	size int64  // bytes readable from r
	win  []byte // buffered bytes at file offsets [base, base+len(win))
	base int64
	pos  int64
}

func newWire(r io.ReaderAt, size int64) *wire {
	return &wire{r: r, size: size, win: make([]byte, 0, windowSize)}
}

// fill restarts the window at pos.
func (w *wire) fill() error {
	n := min(int64(windowSize), w.size-w.pos)
	if n < 0 {
		n = 0
	}
	b := w.win[:n]
	m, err := w.r.ReadAt(b, w.pos)
	if m < len(b) {
		if err == nil || err == io.EOF {
			return convert.Invalidf("file ends at byte %d, before its stated size of %d bytes", w.pos+int64(m), w.size)
		}
		return fmt.Errorf("reading at byte %d: %w", w.pos, err)
	}
	w.win, w.base = b, w.pos
	return nil
}

// avail returns the buffered bytes from pos: at least min(n, size-pos) of them
// (n <= windowSize), more when the window holds more.
func (w *wire) avail(n int) ([]byte, error) {
	wend := w.base + int64(len(w.win))
	if w.pos < w.base || w.pos > wend || (wend-w.pos < int64(n) && wend < w.size) {
		if err := w.fill(); err != nil {
			return nil, err
		}
		wend = w.base + int64(len(w.win))
	}
	return w.win[w.pos-w.base:], nil
}

// past reports a value that runs past end.
func (w *wire) past(what string, at, end int64) error {
	if end >= w.size {
		return convert.Invalidf("truncated protobuf: %s at byte %d runs past the end of the file (%d bytes)", what, at, w.size)
	}
	return convert.Invalidf("malformed protobuf: %s at byte %d runs past the end of its message (byte %d)", what, at, end)
}

func (w *wire) varint(end int64) (uint64, error) {
	b, err := w.avail(binary.MaxVarintLen64)
	if err != nil {
		return 0, err
	}
	if int64(len(b)) > end-w.pos {
		b = b[:max(end-w.pos, 0)]
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		if protowire.ParseError(n) == io.ErrUnexpectedEOF {
			return 0, w.past("a varint", w.pos, end)
		}
		return 0, convert.Invalidf("malformed protobuf: bad varint at byte %d", w.pos)
	}
	w.pos += int64(n)
	return v, nil
}

func (w *wire) fixed(end int64, size int) (uint64, error) {
	if end-w.pos < int64(size) {
		return 0, w.past("a fixed-size value", w.pos, end)
	}
	b, err := w.avail(size)
	if err != nil {
		return 0, err
	}
	w.pos += int64(size)
	if size == 4 {
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}

// field is one decoded field: the value of a varint or fixed field, the
// payload range of a length-delimited one.
type field struct {
	num protowire.Number
	typ protowire.Type
	at  int64  // offset of the tag
	v   uint64 // varint and fixed values
	off int64  // bytes: payload offset
	n   int64  // bytes: payload length
	end int64  // offset just past the field
}

// next reads the field at pos (which must be < end) and leaves pos after it.
func (w *wire) next(end int64) (field, error) {
	f := field{at: w.pos}
	t, err := w.varint(end)
	if err != nil {
		return f, err
	}
	if t>>3 < uint64(protowire.MinValidNumber) || t>>3 > uint64(protowire.MaxValidNumber) {
		return f, convert.Invalidf("malformed protobuf: field number %d at byte %d", t>>3, f.at)
	}
	f.num, f.typ = protowire.DecodeTag(t)
	switch f.typ {
	case protowire.VarintType:
		f.v, err = w.varint(end)
	case protowire.Fixed32Type:
		f.v, err = w.fixed(end, 4)
	case protowire.Fixed64Type:
		f.v, err = w.fixed(end, 8)
	case protowire.BytesType:
		var l uint64
		l, err = w.varint(end)
		if err == nil && l > uint64(end-w.pos) {
			err = w.past(fmt.Sprintf("field %d (%d bytes)", f.num, l), f.at, end)
		}
		if err == nil {
			f.off, f.n = w.pos, int64(l)
			w.pos += int64(l)
		}
	default:
		err = convert.Invalidf("malformed protobuf: field %d at byte %d has wire type %d, which ONNX does not use", f.num, f.at, f.typ)
	}
	f.end = w.pos
	return f, err
}

// want checks a known field's wire type.
func (f field) want(typ protowire.Type, msg string) error {
	if f.typ != typ {
		return convert.Invalidf("malformed protobuf: %s field %d at byte %d has wire type %d, want %d", msg, f.num, f.at, f.typ, typ)
	}
	return nil
}

// bytesAt reads n bytes at off into a new slice; callers bound n.
func (w *wire) bytesAt(off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if off >= w.base && off+n <= w.base+int64(len(w.win)) {
		copy(b, w.win[off-w.base:])
		return b, nil
	}
	m, err := w.r.ReadAt(b, off)
	if m < len(b) {
		if err == nil || err == io.EOF {
			return nil, convert.Invalidf("file ends at byte %d, before its stated size of %d bytes", off+int64(m), w.size)
		}
		return nil, fmt.Errorf("reading at byte %d: %w", off, err)
	}
	return b, nil
}

// countVarints counts the varints packed in [off, off+n), checking that each
// is well formed, without keeping them. pos is left at off+n.
func (w *wire) countVarints(off, n int64) (int64, error) {
	end := off + n
	w.pos = off
	var count int64
	run := 0
	for w.pos < end {
		b, err := w.avail(1)
		if err != nil {
			return 0, err
		}
		if int64(len(b)) > end-w.pos {
			b = b[:end-w.pos]
		}
		for _, c := range b {
			if c < 0x80 {
				count++
				run = 0
			} else if run++; run >= binary.MaxVarintLen64 {
				return 0, convert.Invalidf("malformed protobuf: bad varint in packed field at byte %d", off)
			}
		}
		w.pos += int64(len(b))
	}
	if run != 0 {
		return 0, convert.Invalidf("malformed protobuf: packed field at byte %d ends inside a varint", off)
	}
	return count, nil
}
