package gguf

// The GGUF header parser: magic, version, tensor and key-value counts, the
// metadata key-values, the tensor infos, and where the data section starts.
// It follows the GGUF spec (ggml docs/gguf.md) and mirrors the checks of
// ggml's own reader (ggml/src/gguf.cpp): every count and length is checked
// against the bytes left before anything is allocated, the whole header is
// bounded by Limits.MaxHeaderBytes and the tensor count by Limits.MaxTensors.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"ckpt2csv/convert"
)

const (
	magic            = "GGUF"
	defaultAlignment = 32
	maxDims          = 4     // GGML_MAX_DIMS
	maxKeyBytes      = 65535 // docs/gguf.md: a key is at most 2^16-1 bytes
	maxArrayDepth    = 8     // nested metadata arrays; the spec allows nesting, ggml itself reads none
	// Metadata kept whole in the sidecar: arrays of up to maxArrayItems
	// values and strings of up to maxStringBytes bytes. Longer ones (a
	// 32000-token vocabulary, a tokenizer JSON) are summarised as
	// {"type": "string", "len": 32000} or {"type": "string", "bytes": N}.
	maxArrayItems  = 64
	maxStringBytes = 64 << 10
	// keepBudget bounds the memory of the metadata kept whole (about 16
	// bytes per array item, plus string bytes); past it, values are
	// summarised as above. maxKV bounds the number of pairs: real files
	// hold a few dozen to a few hundred.
	keepBudget = 16 << 20
	maxKV      = 1 << 16
)

// Metadata value types (enum gguf_metadata_value_type).
const (
	tUint8 = iota
	tInt8
	tUint16
	tInt16
	tUint32
	tInt32
	tFloat32
	tBool
	tString
	tArray
	tUint64
	tInt64
	tFloat64
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// valueSize is the encoded size of a fixed-size value type, or for strings
// and arrays the smallest encoding (the length prefix), 0 for unknown types.
func valueSize(t uint32) int64 {
	switch t {
	case tUint8, tInt8, tBool:
		return 1
	case tUint16, tInt16:
		return 2
	case tUint32, tInt32, tFloat32:
		return 4
	case tUint64, tInt64, tFloat64, tString:
		return 8
	case tArray:
		return 4 + 8
	}
	return 0
}

// header is one parsed GGUF file header.
type header struct {
	version   uint32
	order     binary.ByteOrder
	keys      []string       // metadata keys in file order
	kv        map[string]any // decoded values (long arrays summarised)
	ints      map[string]int64
	alignment int64
	tensors   []tensorInfo
	dataStart int64 // absolute offset of the data section
}

// tensorInfo is one tensor info record, as in the file.
type tensorInfo struct {
	name   string
	ne     []int64 // dimensions in ggml order: ne[0] varies fastest
	typ    uint32
	offset uint64 // relative to the data section
}

// reader reads the header sequentially, bounded to limit bytes from the start.
type reader struct {
	br     *bufio.Reader
	order  binary.ByteOrder
	pos    int64
	limit  int64 // bytes we may read: min(file size, header budget)
	size   int64 // file size
	budget int64 // header budget, for the message
	keep   int64 // metadata memory still available (keepBudget)
	buf    [8]byte
	err    error
}

func newReader(src convert.Source, budget int64) *reader {
	size := src.Size()
	limit := min(size, budget)
	return &reader{
		br:     bufio.NewReaderSize(io.NewSectionReader(src, 0, limit), 64<<10),
		order:  binary.LittleEndian,
		limit:  limit,
		size:   size,
		budget: budget,
		keep:   keepBudget,
	}
}

// fail records the first error; later reads return zero values.
func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// need reports whether n more bytes may be read, recording why not.
func (r *reader) need(n uint64, what string) bool {
	if r.err != nil {
		return false
	}
	left := uint64(r.limit - r.pos)
	if n <= left {
		return true
	}
	if r.limit < r.size && n <= uint64(r.size-r.pos) {
		r.fail(convert.Invalidf("header is larger than the limit of %d bytes (at %s)", r.budget, what))
	} else {
		r.fail(convert.Invalidf("%s at byte %d needs %d bytes, but only %d are left in the file", what, r.pos, n, r.size-r.pos))
	}
	return false
}

// tooBig says that what cannot fit in the bytes left.
func (r *reader) tooBig(what string) error {
	if r.limit < r.size {
		return convert.Invalidf("%s cannot fit in the header limit of %d bytes", what, r.budget)
	}
	return convert.Invalidf("%s cannot fit in the %d bytes left in the file", what, r.size-r.pos)
}

func (r *reader) read(p []byte, what string) bool {
	if !r.need(uint64(len(p)), what) {
		return false
	}
	n, err := io.ReadFull(r.br, p)
	r.pos += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			r.fail(convert.Invalidf("file ends at byte %d, inside %s", r.pos, what))
		} else {
			r.fail(fmt.Errorf("reading the header: %w", err)) // storage error: may be retryable
		}
		return false
	}
	return true
}

func (r *reader) skip(n uint64, what string) {
	if !r.need(n, what) {
		return
	}
	m, err := r.br.Discard(int(n))
	r.pos += int64(m)
	if err != nil {
		if errors.Is(err, io.EOF) {
			r.fail(convert.Invalidf("file ends at byte %d, inside %s", r.pos, what))
		} else {
			r.fail(fmt.Errorf("reading the header: %w", err))
		}
	}
}

func (r *reader) u8(what string) uint8 {
	if !r.read(r.buf[:1], what) {
		return 0
	}
	return r.buf[0]
}

func (r *reader) u16(what string) uint16 {
	if !r.read(r.buf[:2], what) {
		return 0
	}
	return r.order.Uint16(r.buf[:])
}

func (r *reader) u32(what string) uint32 {
	if !r.read(r.buf[:4], what) {
		return 0
	}
	return r.order.Uint32(r.buf[:])
}

func (r *reader) u64(what string) uint64 {
	if !r.read(r.buf[:8], what) {
		return 0
	}
	return r.order.Uint64(r.buf[:])
}

// str reads a gguf_string_t; strings longer than keep bytes are skipped and
// reported by length only (ok false).
func (r *reader) str(what string, keep uint64) (s string, n uint64, ok bool) {
	n = r.u64(what + " length")
	if !r.need(n, what) {
		return "", n, false
	}
	if n > keep {
		r.skip(n, what)
		return "", n, false
	}
	b := make([]byte, n)
	if !r.read(b, what) {
		return "", n, false
	}
	return string(b), n, true
}

// parseHeader reads the header of src. budget bounds the header bytes;
// maxTensors the tensor count.
func parseHeader(src convert.Source, budget int64, maxTensors int) (*header, error) {
	r := newReader(src, budget)
	var m [4]byte
	if !r.read(m[:], "the magic") {
		return nil, r.err
	}
	if string(m[:]) != magic {
		return nil, convert.Invalidf("not a GGUF file (magic %q)", m[:])
	}
	h := &header{kv: map[string]any{}, ints: map[string]int64{}, alignment: defaultAlignment}
	v := r.u32("the version")
	if r.err != nil {
		return nil, r.err
	}
	// A big-endian file (docs/gguf.md, version 3) reads as 0x03000000 here;
	// ggml detects the swap the same way, by an empty low half.
	if v&0xFFFF == 0 && v != 0 {
		v = bits.ReverseBytes32(v)
		r.order = binary.BigEndian
	}
	h.version, h.order = v, r.order
	switch {
	case v == 1:
		return nil, convert.Invalidf("GGUF version 1 is not supported (only versions 2 and 3; convert it with a current llama.cpp)")
	case v != 2 && v != 3:
		return nil, convert.Invalidf("GGUF version %d is not supported (only versions 2 and 3)", v)
	}
	nTensors := r.u64("the tensor count")
	nKV := r.u64("the metadata count")
	if r.err != nil {
		return nil, r.err
	}
	if nKV > maxKV {
		return nil, convert.Invalidf("%d metadata pairs exceed the limit of %d", nKV, maxKV)
	}
	if nTensors > uint64(maxTensors) {
		return nil, convert.Invalidf("%d tensors exceed the limit of %d", nTensors, maxTensors)
	}
	// A key-value pair takes at least 8+4+1 bytes, a tensor info 8+4+4+8.
	if left := uint64(r.limit - r.pos); nKV > left/13 || nTensors > left/24 {
		return nil, r.tooBig(fmt.Sprintf("%d metadata pairs and %d tensor infos", nKV, nTensors))
	}

	for i := uint64(0); i < nKV && r.err == nil; i++ {
		key, n, ok := r.str(fmt.Sprintf("metadata key %d", i), maxKeyBytes)
		if r.err != nil {
			break
		}
		if !ok {
			return nil, convert.Invalidf("metadata key %d is %d bytes long (at most %d allowed)", i, n, maxKeyBytes)
		}
		if _, dup := h.kv[key]; dup {
			return nil, convert.Invalidf("metadata key %q appears twice", key)
		}
		t := r.u32(fmt.Sprintf("the type of metadata key %q", key))
		val, iv, isInt := r.value(t, key, 0, true)
		if r.err != nil {
			break
		}
		h.keys = append(h.keys, key)
		h.kv[key] = val
		if isInt {
			h.ints[key] = iv
		}
	}
	if r.err != nil {
		return nil, r.err
	}

	if _, ok := h.kv["general.alignment"]; ok {
		a, isInt := h.ints["general.alignment"]
		if !isInt {
			return nil, convert.Invalidf("general.alignment is not an integer")
		}
		if a <= 0 || a&(a-1) != 0 {
			return nil, convert.Invalidf("general.alignment %d is not a power of two", a)
		}
		if a > 1<<30 {
			return nil, convert.Invalidf("general.alignment %d is over the limit of 2^30", a)
		}
		h.alignment = a
	}

	names := make(map[string]bool, nTensors)
	h.tensors = make([]tensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		name, _, _ := r.str(fmt.Sprintf("the name of tensor %d", i), math.MaxUint64)
		nd := r.u32(fmt.Sprintf("the rank of tensor %q", name))
		if r.err != nil {
			return nil, r.err
		}
		if names[name] {
			return nil, convert.Invalidf("tensor name %q appears twice", name)
		}
		names[name] = true
		if nd > maxDims {
			return nil, convert.Invalidf("tensor %q has %d dimensions (GGUF allows at most %d)", name, nd, maxDims)
		}
		ti := tensorInfo{name: name, ne: make([]int64, nd)}
		for j := range ti.ne {
			d := r.u64(fmt.Sprintf("dimension %d of tensor %q", j, name))
			if d > math.MaxInt64 {
				return nil, convert.Invalidf("tensor %q: dimension %d is %d, too large", name, j, d)
			}
			ti.ne[j] = int64(d)
		}
		ti.typ = r.u32(fmt.Sprintf("the type of tensor %q", name))
		ti.offset = r.u64(fmt.Sprintf("the offset of tensor %q", name))
		if r.err != nil {
			return nil, r.err
		}
		h.tensors = append(h.tensors, ti)
	}
	// The data section starts at the next multiple of the alignment.
	h.dataStart = (r.pos + h.alignment - 1) &^ (h.alignment - 1)
	return h, nil
}

// value reads one metadata value of type t. keep false walks over it
// without building anything (inside a summarised array). For integer
// scalars it also returns the value as an int64 (isInt), for keys such as
// general.alignment and split.count; a uint64 above MaxInt64 is not one.
func (r *reader) value(t uint32, key string, depth int, keep bool) (v any, iv int64, isInt bool) {
	what := fmt.Sprintf("the value of %q", key)
	switch t {
	case tUint8:
		x := r.u8(what)
		return x, int64(x), true
	case tInt8:
		x := int8(r.u8(what))
		return x, int64(x), true
	case tUint16:
		x := r.u16(what)
		return x, int64(x), true
	case tInt16:
		x := int16(r.u16(what))
		return x, int64(x), true
	case tUint32:
		x := r.u32(what)
		return x, int64(x), true
	case tInt32:
		x := int32(r.u32(what))
		return x, int64(x), true
	case tUint64:
		x := r.u64(what)
		return x, int64(x), x <= math.MaxInt64
	case tInt64:
		x := int64(r.u64(what))
		return x, x, true
	case tFloat32:
		f := math.Float32frombits(r.u32(what))
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, 0, false // SPEC §5: a non-finite number is null
		}
		return f, 0, false
	case tFloat64:
		f := math.Float64frombits(r.u64(what))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, 0, false
		}
		return f, 0, false
	case tBool:
		return r.u8(what) != 0, 0, false
	case tString:
		if !keep {
			n := r.u64(what + " length")
			r.skip(n, what)
			return nil, 0, false
		}
		s, n, ok := r.str(what, uint64(min(maxStringBytes, max(r.keep, 0))))
		r.keep -= int64(len(s)) + 16
		if !ok {
			return map[string]any{"type": "string", "bytes": n}, 0, false
		}
		return s, 0, false
	case tArray:
		if depth >= maxArrayDepth {
			r.fail(convert.Invalidf("metadata %q: arrays nested more than %d deep", key, maxArrayDepth))
			return nil, 0, false
		}
		et := r.u32(what + " element type")
		n := r.u64(what + " length")
		if r.err != nil {
			return nil, 0, false
		}
		es := valueSize(et)
		if es == 0 {
			r.fail(convert.Invalidf("metadata %q: unknown array element type %d", key, et))
			return nil, 0, false
		}
		if left := uint64(r.limit - r.pos); n > left/uint64(es) {
			r.fail(r.tooBig(fmt.Sprintf("metadata %q: an array of %d %s values", key, n, valueTypeNames[et])))
			return nil, 0, false
		}
		if keep && n <= maxArrayItems && r.keep >= int64(n)*16 {
			r.keep -= int64(n) * 16
			items := make([]any, n)
			for i := range items {
				items[i], _, _ = r.value(et, key, depth+1, true)
			}
			return items, 0, false
		}
		if et != tString && et != tArray {
			r.skip(n*uint64(es), what) // n*es <= left, checked above
		} else {
			for i := uint64(0); i < n && r.err == nil; i++ {
				r.value(et, key, depth+1, false)
			}
		}
		if !keep {
			return nil, 0, false
		}
		return map[string]any{"type": valueTypeNames[et], "len": n}, 0, false
	}
	r.fail(convert.Invalidf("metadata %q: unknown value type %d", key, t))
	return nil, 0, false
}
