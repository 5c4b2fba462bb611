package gguf

// A small GGUF writer for tests, laid out from the spec (docs/gguf.md).
// Fixture fields can be overridden to build hostile files.

import (
	"bytes"
	"encoding/binary"

	"ckpt2csv/convert"
)

// fixture describes one GGUF file.
type fixture struct {
	version   uint32 // 0 means 3
	order     binary.ByteOrder
	kv        [][]byte // encoded key-value pairs (kvPair)
	tensors   []ftensor
	alignment int64   // data alignment used for the layout; 0 means 32
	nTensors  *uint64 // overrides the tensor count
	nKV       *uint64 // overrides the key-value count
	truncate  int     // cut the file to this many bytes (0: whole)
}

type ftensor struct {
	name   string
	ne     []uint64 // ggml order
	typ    uint32
	data   []byte
	offset int64 // -1: the next aligned offset
}

func (f fixture) bytes() []byte {
	o := f.order
	if o == nil {
		o = binary.LittleEndian
	}
	v := f.version
	if v == 0 {
		v = 3
	}
	align := f.alignment
	if align == 0 {
		align = defaultAlignment
	}
	var b bytes.Buffer
	b.WriteString("GGUF")
	put := func(x any) { binary.Write(&b, o, x) }
	put(v)
	nt, nkv := uint64(len(f.tensors)), uint64(len(f.kv))
	if f.nTensors != nil {
		nt = *f.nTensors
	}
	if f.nKV != nil {
		nkv = *f.nKV
	}
	put(nt)
	put(nkv)
	for _, kv := range f.kv {
		if o == binary.BigEndian {
			panic("big-endian key-values: encode them with the order")
		}
		b.Write(kv)
	}
	var next int64
	offsets := make([]int64, len(f.tensors))
	for i, t := range f.tensors {
		put(uint64(len(t.name)))
		b.WriteString(t.name)
		put(uint32(len(t.ne)))
		for _, d := range t.ne {
			put(d)
		}
		put(t.typ)
		off := t.offset
		if off < 0 {
			off = next
		}
		offsets[i] = off
		put(uint64(off))
		next = max(next, (off+int64(len(t.data))+align-1)/align*align)
	}
	for b.Len()%int(align) != 0 {
		b.WriteByte(0)
	}
	start := b.Len()
	for i, t := range f.tensors {
		end := start + int(offsets[i]) + len(t.data)
		for b.Len() < end {
			b.WriteByte(0)
		}
		copy(b.Bytes()[start+int(offsets[i]):], t.data)
	}
	out := b.Bytes()
	if f.truncate > 0 && f.truncate < len(out) {
		out = out[:f.truncate]
	}
	return out
}

// Little-endian value encoders.

func le(vals ...any) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func gstr(s string) []byte { return append(le(uint64(len(s))), s...) }

func kvPair(key string, typ uint32, val []byte) []byte {
	return append(append(gstr(key), le(typ)...), val...)
}

func garr(et uint32, items ...[]byte) []byte {
	b := le(et, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func f32s(vals ...float32) []byte { return le(vals) }

func f16bits(f float32) uint16 { return convert.Float32To16(f) }
