// A reader for the LevelDB table format (leveldb/doc/table_format.md), which
// is what a TensorFlow tensor bundle's .index file is: data blocks of
// prefix-compressed keys with restart points, a metaindex block, an index
// block, each followed by a 5-byte trailer (type, masked CRC-32C), and a
// 48-byte footer (two block handles, padding, magic 0xdb4775248b80fb57).
//
// Hand-written rather than goleveldb's leveldb/table because that reader
// allocates a block's length, as read from the file, before checking it
// against the file size (a 48-byte file can ask for terabytes), indexes into
// blocks shorter than their restart array, and ignores short reads. TF writes
// bundle indexes uncompressed (BundleWriter sets kNoCompression), so the whole
// reader is a few bounded loops. Every block checksum is verified; keys must
// ascend strictly, and data blocks may not overlap, so each byte is read once.

package tfckpt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"ckpt2csv/convert"
)

const (
	footerLen  = 48
	tableMagic = 0xdb4775248b80fb57
	trailerLen = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unmask undoes LevelDB's (and TF's) CRC masking.
func unmask(m uint32) uint32 {
	r := m - 0xa282ead8
	return r>>17 | r<<15
}

// mask applies LevelDB's CRC masking.
func mask(c uint32) uint32 { return (c>>15 | c<<17) + 0xa282ead8 }

type kv struct {
	key, value []byte
}

// hasTableMagic reports whether b ends with a table footer magic.
func hasTableMagic(tail []byte) bool {
	return len(tail) >= 8 && binary.LittleEndian.Uint64(tail[len(tail)-8:]) == tableMagic
}

// readTable returns every entry of the table in b, in key order.
func readTable(b []byte) ([]kv, error) {
	if len(b) < footerLen {
		return nil, convert.Invalidf("index is %d bytes, too short for a table footer", len(b))
	}
	footer := b[len(b)-footerLen:]
	if !hasTableMagic(footer) {
		return nil, convert.Invalidf("index has no table magic in its footer")
	}
	dataEnd := uint64(len(b) - footerLen)
	_, n1 := handle(footer)
	if n1 <= 0 {
		return nil, convert.Invalidf("index footer has a bad metaindex block handle")
	}
	index, n2 := handle(footer[n1:])
	if n2 <= 0 {
		return nil, convert.Invalidf("index footer has a bad index block handle")
	}
	ib, err := block(b, index, dataEnd, "index block")
	if err != nil {
		return nil, err
	}
	handles, err := entries(ib, "index block")
	if err != nil {
		return nil, err
	}
	var out []kv
	var next uint64 // data blocks follow one another: each is read once
	for _, h := range handles {
		bh, n := handle(h.value)
		if n <= 0 {
			return nil, convert.Invalidf("index block has a bad data block handle")
		}
		if bh.off < next {
			return nil, convert.Invalidf("data block at %d overlaps the one before it", bh.off)
		}
		db, err := block(b, bh, dataEnd, "data block")
		if err != nil {
			return nil, err
		}
		next = bh.off + bh.size + trailerLen
		kvs, err := entries(db, "data block")
		if err != nil {
			return nil, err
		}
		for _, e := range kvs {
			if len(out) > 0 && bytes.Compare(out[len(out)-1].key, e.key) >= 0 {
				return nil, convert.Invalidf("index keys are out of order at %q", e.key)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

type blockHandle struct{ off, size uint64 }

func handle(b []byte) (blockHandle, int) {
	off, n := binary.Uvarint(b)
	if n <= 0 {
		return blockHandle{}, 0
	}
	size, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return blockHandle{}, 0
	}
	return blockHandle{off, size}, n + m
}

// block returns the contents of the block at h after checking its trailer.
func block(b []byte, h blockHandle, end uint64, what string) ([]byte, error) {
	if h.off > end || h.size > end-h.off || trailerLen > end-h.off-h.size {
		return nil, convert.Invalidf("%s at %d (%d bytes) runs past the end of the index (%d bytes)", what, h.off, h.size, end)
	}
	contents := b[h.off : h.off+h.size]
	trailer := b[h.off+h.size : h.off+h.size+trailerLen]
	want := unmask(binary.LittleEndian.Uint32(trailer[1:]))
	if got := crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, trailer[:1]); got != want {
		return nil, convert.Invalidf("%s at %d fails its checksum (index file corrupt)", what, h.off)
	}
	if trailer[0] != 0 {
		return nil, convert.Invalidf("%s at %d is compressed (type %d); TF bundle indexes are not", what, h.off, trailer[0])
	}
	return contents, nil
}

// entries decodes a block's prefix-compressed entries.
func entries(blk []byte, what string) ([]kv, error) {
	if len(blk) < 4 {
		return nil, convert.Invalidf("%s is %d bytes, too short", what, len(blk))
	}
	restarts := uint64(binary.LittleEndian.Uint32(blk[len(blk)-4:]))
	if restarts*4 > uint64(len(blk)-4) {
		return nil, convert.Invalidf("%s has %d restart points, more than fit", what, restarts)
	}
	data := blk[:uint64(len(blk)-4)-restarts*4]
	var out []kv
	var last []byte
	for len(data) > 0 {
		var v [3]uint64
		for i := range v {
			x, n := binary.Uvarint(data)
			if n <= 0 || x > uint64(len(blk)) {
				return nil, convert.Invalidf("%s has a malformed entry", what)
			}
			v[i], data = x, data[n:]
		}
		shared, unshared, vlen := v[0], v[1], v[2]
		if shared > uint64(len(last)) || unshared+vlen > uint64(len(data)) {
			return nil, convert.Invalidf("%s has a malformed entry", what)
		}
		key := make([]byte, 0, shared+unshared)
		key = append(append(key, last[:shared]...), data[:unshared]...)
		out = append(out, kv{key: key, value: data[unshared : unshared+vlen]})
		data = data[unshared+vlen:]
		last = key
	}
	return out, nil
}
