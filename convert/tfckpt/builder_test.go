package tfckpt

// A tensor bundle writer for tests, following TF's BundleWriter
// (tensor_bundle.cc) and LevelDB's TableBuilder (table/table_builder.cc,
// table/block_builder.cc, doc/table_format.md): entries sorted by key under
// the header at key "", data blocks of prefix-compressed keys with a restart
// point every restartInterval entries, a 5-byte trailer (type 0, masked
// CRC-32C of contents+type) after each block, an index block of separator
// keys and block handles, an empty metaindex block, and the 48-byte footer.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

type blockBuilder struct {
	restartInterval int
	buf             []byte
	restarts        []uint32
	counter         int
	last            []byte
}

func (b *blockBuilder) add(key, value []byte) {
	shared := 0
	if b.counter < b.restartInterval && len(b.restarts) > 0 {
		for shared < len(key) && shared < len(b.last) && key[shared] == b.last[shared] {
			shared++
		}
	} else {
		b.restarts = append(b.restarts, uint32(len(b.buf)))
		b.counter = 0
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)-shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(value)))
	b.buf = append(b.buf, key[shared:]...)
	b.buf = append(b.buf, value...)
	b.last = append(b.last[:0], key...)
	b.counter++
}

func (b *blockBuilder) finish() []byte {
	out := append([]byte{}, b.buf...)
	if len(b.restarts) == 0 {
		b.restarts = []uint32{0}
	}
	for _, r := range b.restarts {
		out = binary.LittleEndian.AppendUint32(out, r)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b.restarts)))
	*b = blockBuilder{restartInterval: b.restartInterval}
	return out
}

func (b *blockBuilder) empty() bool { return len(b.buf) == 0 }

// tableOptions shape the table; the zero value is LevelDB's defaults.
type tableOptions struct {
	blockSize       int // data block size target (4096)
	restartInterval int // entries between restart points (16)
	corruptBlock    int // data block whose checksum to break, 1-based; 0 none
	blockType       byte
}

// buildTable writes sorted key-value pairs as a LevelDB table.
func buildTable(kvs []kv, o tableOptions) []byte {
	if o.blockSize == 0 {
		o.blockSize = 4096
	}
	if o.restartInterval == 0 {
		o.restartInterval = 16
	}
	var out []byte
	write := func(contents []byte, typ byte, corrupt bool) []byte {
		h := binary.AppendUvarint(nil, uint64(len(out)))
		h = binary.AppendUvarint(h, uint64(len(contents)))
		crc := crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, []byte{typ})
		if corrupt {
			crc ^= 1
		}
		out = append(out, contents...)
		out = append(out, typ)
		out = binary.LittleEndian.AppendUint32(out, mask(crc))
		return h
	}
	data := &blockBuilder{restartInterval: o.restartInterval}
	index := &blockBuilder{restartInterval: 1}
	blocks := 0
	flush := func() {
		blocks++
		last := append([]byte{}, data.last...)
		h := write(data.finish(), o.blockType, blocks == o.corruptBlock)
		index.add(last, h)
	}
	for _, e := range kvs {
		data.add(e.key, e.value)
		if len(data.buf) >= o.blockSize {
			flush()
		}
	}
	if !data.empty() {
		flush()
	}
	meta := &blockBuilder{restartInterval: 16}
	metaH := write(meta.finish(), 0, false)
	indexH := write(index.finish(), 0, false)
	footer := append(append([]byte{}, metaH...), indexH...)
	footer = append(footer, make([]byte, 40-len(footer))...)
	footer = binary.LittleEndian.AppendUint64(footer, tableMagic)
	return append(out, footer...)
}

// spec is one bundle entry to write.
type spec struct {
	key    string
	dtype  int
	shape  []int64
	data   []byte // the tensor's bytes as stored
	shard  int
	slices int  // TensorSliceProto entries (a partitioned variable's full entry)
	badCRC bool // store a wrong checksum
	size   int64
	off    int64
	fixOff bool // use off as given
	fixLen bool // use size as given
}

// bundle describes a whole checkpoint to write.
type bundle struct {
	shards    int
	big       bool
	align     int // data alignment between tensors (TF's options.data_alignment)
	table     tableOptions
	header    []byte // replaces the encoded header when set
	noHeader  bool
	specs     []spec
	rawSlices [][2]string // extra raw keys (slice entries), key and value
}

func encodeEntry(s spec, off int64, crc uint32) []byte {
	var b []byte
	if s.dtype != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), uint64(s.dtype))
	}
	var shape []byte
	for _, d := range s.shape {
		dim := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(d))
		shape = protowire.AppendBytes(protowire.AppendTag(shape, 2, protowire.BytesType), dim)
	}
	b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), shape)
	if s.shard != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(s.shard))
	}
	if off != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 4, protowire.VarintType), uint64(off))
	}
	size := int64(len(s.data))
	if s.fixLen {
		size = s.size
	}
	if size != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 5, protowire.VarintType), uint64(size))
	}
	b = protowire.AppendFixed32(protowire.AppendTag(b, 6, protowire.Fixed32Type), mask(crc))
	for range s.slices {
		ext := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 2))
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), ext)
	}
	return b
}

func encodeHeader(shards int, big bool) []byte {
	b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(shards))
	if big {
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), 1)
	}
	ver := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)
	return protowire.AppendBytes(protowire.AppendTag(b, 3, protowire.BytesType), ver)
}

// write writes PREFIX.index and its data shards into dir and returns the index path.
func (bd bundle) write(t testing.TB, dir, prefix string) string {
	t.Helper()
	if bd.shards == 0 {
		bd.shards = 1
	}
	data := make([][]byte, bd.shards)
	var kvs []kv
	for _, s := range bd.specs {
		d := &data[s.shard%bd.shards]
		if bd.align > 1 {
			for len(*d)%bd.align != 0 {
				*d = append(*d, 0)
			}
		}
		off := int64(len(*d))
		if s.fixOff {
			off = s.off
		}
		*d = append(*d, s.data...)
		crc := crc32.Checksum(s.data, castagnoli)
		if s.badCRC {
			crc ^= 0x10
		}
		kvs = append(kvs, kv{[]byte(s.key), encodeEntry(s, off, crc)})
	}
	for _, r := range bd.rawSlices {
		kvs = append(kvs, kv{[]byte(r[0]), []byte(r[1])})
	}
	sort.Slice(kvs, func(i, j int) bool { return string(kvs[i].key) < string(kvs[j].key) })
	if !bd.noHeader {
		h := bd.header
		if h == nil {
			h = encodeHeader(bd.shards, bd.big)
		}
		kvs = append([]kv{{[]byte{}, h}}, kvs...)
	}
	idx := filepath.Join(dir, prefix+".index")
	if err := os.WriteFile(idx, buildTable(kvs, bd.table), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, d := range data {
		name := filepath.Join(dir, fmt.Sprintf("%s.data-%05d-of-%05d", prefix, i, bd.shards))
		if err := os.WriteFile(name, d, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return idx
}
