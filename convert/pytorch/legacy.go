// The legacy torch.save format (torch < 1.6, or _use_new_zipfile_serialization=False),
// per torch/serialization.py _legacy_save / _legacy_load: five pickles back
// to back, then the storages.
//
//	pickle: MAGIC_NUMBER (0x1950a86a20f9469cfc6c)
//	pickle: PROTOCOL_VERSION (1001)
//	pickle: sys_info {protocol_version, little_endian, type_sizes}
//	pickle: the object; storages are persistent ids
//	        ('storage', type, key, location, numel, view_metadata)
//	pickle: the storage keys, in the order their data follows
//	for each key: int64 element count (little-endian), then count*itemsize bytes
//
// torch writes the counts and the data little-endian on every host. Each
// count must match the persistent id, and each storage must fit in the file.

package pytorch

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
)

func openLegacy(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	r := newReader(ctx, lim)
	size := src.Size()
	dec := pickle.NewDecoderAt(src, 0, size, r.options())
	magic, err := dec.Decode()
	if err != nil {
		return nil, err
	}
	if b, ok := magic.(*big.Int); !ok || b.Cmp(legacyMagic) != 0 {
		return nil, convert.Invalidf("pytorch: legacy file does not start with torch's magic number")
	}
	proto, err := dec.Decode()
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int64); !ok || p != 1001 {
		return nil, convert.Invalidf("pytorch: legacy protocol version %s is not supported (want 1001)", clip(pickle.Repr(proto)))
	}
	sysInfo, err := dec.Decode()
	if err != nil {
		return nil, err
	}
	meta := map[string]any{"serialization": "legacy", "legacy_protocol_version": int64(1001)}
	if d, ok := pickle.AsDict(sysInfo); ok {
		if le, ok := d.Get("little_endian"); ok {
			if b, ok := le.(bool); ok {
				meta["little_endian"] = b
			}
		}
		if ts, ok := d.Get("type_sizes"); ok {
			if tsd, ok := pickle.AsDict(ts); ok {
				sizes := map[string]any{}
				for _, it := range tsd.Items {
					if k, ok := it.Key.(string); ok {
						if v, ok := it.Value.(int64); ok {
							sizes[k] = v
						}
					}
				}
				meta["type_sizes"] = sizes
			}
		}
	}
	obj, err := dec.Decode()
	if err != nil {
		return nil, err
	}
	keysV, err := dec.Decode()
	if err != nil {
		return nil, err
	}
	keys, ok := pickle.AsList(keysV)
	if !ok {
		return nil, convert.Invalidf("pytorch: legacy storage key list is a %s", clip(pickle.Repr(keysV)))
	}
	pos := dec.Offset()
	for _, kv := range keys {
		key, ok := kv.(string)
		if !ok {
			return nil, convert.Invalidf("pytorch: legacy storage key %s is not a string", clip(pickle.Repr(kv)))
		}
		st := r.storages[key]
		if st == nil {
			return nil, convert.Invalidf("pytorch: legacy storage %q is listed but no tensor uses it", clip(key))
		}
		if st.found {
			return nil, convert.Invalidf("pytorch: legacy storage %q is listed twice", clip(key))
		}
		var hdr [8]byte
		if pos > size-8 {
			return nil, convert.Invalidf("pytorch: legacy storage %q: file ends at %d, before its size", clip(key), size)
		}
		if _, err := src.ReadAt(hdr[:], pos); err != nil && err != io.EOF {
			return nil, fmt.Errorf("pytorch: reading storage %q: %w", key, err)
		}
		n := int64(binary.LittleEndian.Uint64(hdr[:]))
		if n != st.numel {
			return nil, convert.Invalidf("pytorch: legacy storage %q holds %d elements, the pickle says %d", clip(key), n, st.numel)
		}
		bytes := n * int64(st.itemsize) // n was checked against the int64 range with its itemsize
		if bytes > size-pos-8 {
			return nil, convert.Invalidf("pytorch: legacy storage %q: %d bytes at %d run past the end of the file (%d bytes)", clip(key), bytes, pos+8, size)
		}
		st.off, st.found = pos+8, true
		pos += 8 + bytes
	}
	for _, st := range r.order {
		if !st.found {
			return nil, convert.Invalidf("pytorch: legacy storage %q is used but its data is missing", clip(st.key))
		}
	}
	if err := r.walkRoot(obj, convert.BaseName(src), meta); err != nil {
		return nil, err
	}
	return newCheckpoint(src, r, false, lim, meta), ctx.Err()
}
