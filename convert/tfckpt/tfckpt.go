// Package tfckpt reads TensorFlow tensor bundles, the checkpoint format of
// tf.train.Checkpoint, tf.keras save_weights and tf.compat.v1 Saver (V2), and
// the variables/ of a SavedModel: NAME.index, a LevelDB table (table.go) whose
// key "" holds a BundleHeaderProto and whose other keys hold one
// BundleEntryProto per tensor, and NAME.data-SSSSS-of-NNNNN shards holding
// the bytes (tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc},
// tensorflow/core/protobuf/tensor_bundle.proto).
//
// Each tensor's masked CRC-32C is verified while it streams. DT_STRING,
// DT_VARIANT, complex and resource entries are skipped, as are partitioned
// variables (entries with slices). Limits: the .index is read whole and must
// fit Limits.MaxHeaderBytes; tensors count against Limits.MaxTensors; every
// entry's offset and size are checked against its shard before streaming.
package tfckpt

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"strings"

	"gocloud.dev/gcerrors"
	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

func init() {
	convert.Register(convert.Format{Name: "tf", Match: Match, Open: Open})
}

// Match recognises a bundle index: a LevelDB table (footer magic) whose first
// entry is the header under the empty key (shared 0, unshared 0). An .index
// that starts so but lost its footer (cut short) is still one, so that the
// error says what is wrong with it.
func Match(src convert.Source, head []byte) bool {
	size := src.Size()
	if len(head) < 3 || head[0] != 0 || head[1] != 0 {
		return false
	}
	if strings.HasSuffix(src.Name(), ".index") {
		return true
	}
	var tail [8]byte
	if size < footerLen {
		return false
	}
	if _, err := src.ReadAt(tail[:], size-8); err != nil && err != io.EOF {
		return false
	}
	return hasTableMagic(tail[:])
}

// TF DataType codes (tensorflow/core/framework/types.proto).
var dtypes = map[uint64]convert.DType{
	1: convert.Float32, 2: convert.Float64, 3: convert.Int32, 4: convert.Uint8,
	5: convert.Int16, 6: convert.Int8, 9: convert.Int64, 10: convert.Bool,
	11: convert.Int8, 12: convert.Uint8, 13: convert.Int32, // DT_QINT8, DT_QUINT8, DT_QINT32: the stored integers
	14: convert.BFloat16, 15: convert.Int16, 16: convert.Uint16, // DT_QINT16, DT_QUINT16
	17: convert.Uint16, 19: convert.Float16, 22: convert.Uint32, 23: convert.Uint64,
	24: convert.Float8E5M2, 25: convert.Float8E4M3,
}

var dtypeNames = map[uint64]string{
	7: "DT_STRING", 8: "DT_COMPLEX64", 18: "DT_COMPLEX128", 20: "DT_RESOURCE", 21: "DT_VARIANT",
	26: "DT_FLOAT8_E4M3FNUZ", 27: "DT_FLOAT8_E4M3B11FNUZ", 28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4",
}

const maxShards = 1 << 20

type entry struct {
	shard     int
	off, size int64
	crc       uint32 // unmasked
}

type checkpoint struct {
	info    convert.Info
	entries []entry
	names   []string
	shards  []convert.Source
	big     bool // data written big-endian
}

// Open reads the index, checks every entry against its shard, and lists the tensors.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	size := src.Size()
	if size > lim.MaxHeaderBytes {
		return nil, convert.Invalidf("index is %d bytes, over the limit of %d", size, lim.MaxHeaderBytes)
	}
	b := make([]byte, size)
	if n, err := src.ReadAt(b, 0); n < len(b) {
		if err == nil || err == io.EOF {
			return nil, convert.Invalidf("index ends after %d of %d bytes", n, size)
		}
		return nil, fmt.Errorf("reading index: %w", err)
	}
	kvs, err := readTable(b)
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 || len(kvs[0].key) != 0 {
		return nil, convert.Invalidf("index has no bundle header (key \"\")")
	}
	hdr, err := parseHeader(kvs[0].value)
	if err != nil {
		return nil, err
	}
	base := convert.BaseName(src)
	prefix, ok := strings.CutSuffix(base, ".index")
	if !ok || prefix == "" {
		return nil, convert.Invalidf("index file %q is not named PREFIX.index, so its data files cannot be named", base)
	}
	c := &checkpoint{
		info:   convert.Info{Format: "tf", Metadata: hdr.meta()},
		shards: make([]convert.Source, hdr.shards),
		big:    hdr.big,
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	slices := 0
	for _, e := range kvs[1:] {
		if e.key[0] == 0 { // a slice of a partitioned variable: an OrderedCode key
			slices++
			continue
		}
		name := strings.ToValidUTF8(string(e.key), "\uFFFD")
		be, err := parseEntry(e.value)
		if err != nil {
			return nil, convert.Invalidf("tensor %q: %v", name, err)
		}
		dt, ok := dtypes[be.dtype]
		switch {
		case be.slices > 0:
			c.skip(name, fmt.Sprintf("partitioned variable saved as %d slices is not exported", be.slices))
			continue
		case !ok:
			what := dtypeNames[be.dtype]
			if what == "" {
				what = fmt.Sprintf("TF dtype %d", be.dtype)
			}
			c.skip(name, what+" is not exported")
			continue
		}
		numel, err := convert.CheckedNumel(be.shape, dt.Size())
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if want := numel * int64(dt.Size()); be.size != want {
			return nil, convert.Invalidf("tensor %q: entry says %d bytes, shape %v of %s needs %d", name, be.size, be.shape, dt, want)
		}
		if be.shard < 0 || be.shard >= int64(hdr.shards) {
			return nil, convert.Invalidf("tensor %q: shard %d, but the bundle has %d", name, be.shard, hdr.shards)
		}
		shard, err := c.shard(ctx, src, prefix, int(be.shard))
		if err != nil {
			return nil, err
		}
		if be.off < 0 || be.off > shard.Size() || be.size > shard.Size()-be.off {
			return nil, convert.Invalidf("tensor %q: data ends at byte %d, past the end of %s (%d bytes)", name, be.off+be.size, dataName(prefix, int(be.shard), hdr.shards), shard.Size())
		}
		if len(c.info.Tensors) >= lim.MaxTensors {
			return nil, convert.Invalidf("more than %d tensors", lim.MaxTensors)
		}
		layer, param := SplitKey(name)
		c.info.Tensors = append(c.info.Tensors, convert.Tensor{Name: name, Layer: layer, Param: param, DType: dt, Shape: be.shape})
		c.entries = append(c.entries, entry{shard: int(be.shard), off: be.off, size: be.size, crc: unmask(be.crc)})
		c.names = append(c.names, name)
	}
	if slices > 0 {
		c.info.Metadata["slice_entries"] = slices
	}
	return c, nil
}

// SplitKey splits a checkpoint key into layer and param at its last '/',
// after dropping the "/.ATTRIBUTES/VARIABLE_VALUE" of TF2 object-based keys:
// "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" is
// "layer_with_weights-0" + "kernel".
func SplitKey(key string) (layer, param string) {
	return convert.SplitName(strings.TrimSuffix(key, "/.ATTRIBUTES/VARIABLE_VALUE"), "/")
}

func dataName(prefix string, shard, n int) string {
	return fmt.Sprintf("%s.data-%05d-of-%05d", prefix, shard, n)
}

func (c *checkpoint) shard(ctx context.Context, src convert.Source, prefix string, i int) (convert.Source, error) {
	if c.shards[i] != nil {
		return c.shards[i], nil
	}
	name := dataName(prefix, i, len(c.shards))
	s, err := src.Sibling(ctx, name)
	if errors.Is(err, fs.ErrNotExist) || gcerrors.Code(err) == gcerrors.NotFound {
		return nil, convert.Invalidf("data file %s is missing", name)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	c.shards[i] = s
	return s, nil
}

func (c *checkpoint) skip(name, reason string) {
	c.info.Skipped = append(c.info.Skipped, convert.Skipped{Name: name, Reason: reason})
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

func (c *checkpoint) Close() error {
	for i, s := range c.shards {
		if cl, ok := s.(io.Closer); ok {
			cl.Close()
		}
		c.shards[i] = nil
	}
	return nil
}

// Values streams tensor i, checking its CRC-32C as the last byte goes by.
func (c *checkpoint) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.entries) {
		return nil, fmt.Errorf("tensor index %d out of range", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := c.entries[i]
	if c.shards[e.shard] == nil {
		return nil, fmt.Errorf("tensor %q: checkpoint is closed", c.names[i])
	}
	var r io.ReadCloser = &crcReader{r: convert.Section(c.shards[e.shard], e.off, e.size), left: e.size, want: e.crc}
	if size := c.info.Tensors[i].DType.Size(); c.big && size > 1 {
		r = &swapper{r: r, size: size}
	}
	return r, nil
}

// crcReader verifies a tensor's CRC-32C. When the data is bad the read that
// would complete the tensor returns the error instead of its bytes, so a
// reader that stops at exactly the expected length still sees it.
type crcReader struct {
	r    io.ReadCloser
	left int64
	crc  uint32
	want uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.left -= int64(n)
	if c.left == 0 {
		if c.crc != c.want {
			return 0, convert.Invalidf("data fails its crc32c check (data file corrupt)")
		}
		if err == io.EOF {
			err = nil
		}
	}
	return n, err
}

func (c *crcReader) Close() error { return c.r.Close() }

// swapper byte-swaps values of size bytes (a bundle written on a big-endian host).
type swapper struct {
	r    io.ReadCloser
	size int
	buf  []byte
	pend []byte
}

func (s *swapper) Read(p []byte) (int, error) {
	if len(s.pend) == 0 {
		if s.buf == nil {
			s.buf = make([]byte, 32<<10)
		}
		n, err := io.ReadAtLeast(s.r, s.buf[:len(s.buf)-len(s.buf)%s.size], s.size)
		n -= n % s.size
		if n == 0 {
			if err == io.ErrUnexpectedEOF {
				err = convert.Invalidf("data ends inside a value")
			}
			return 0, err
		}
		for i := 0; i < n; i += s.size {
			v := s.buf[i : i+s.size]
			for a, b := 0, len(v)-1; a < b; a, b = a+1, b-1 {
				v[a], v[b] = v[b], v[a]
			}
		}
		s.pend = s.buf[:n]
	}
	k := copy(p, s.pend)
	s.pend = s.pend[k:]
	return k, nil
}

func (s *swapper) Close() error { return s.r.Close() }

// header is a BundleHeaderProto: num_shards = 1, endianness = 2, version = 3
// (VersionDef: producer = 1, min_consumer = 2, bad_consumers = 3).
type header struct {
	shards      int
	big         bool
	producer    int64
	minConsumer int64
}

func (h header) meta() map[string]any {
	end := "little"
	if h.big {
		end = "big"
	}
	return map[string]any{"num_shards": h.shards, "endianness": end, "version_producer": h.producer, "version_min_consumer": h.minConsumer}
}

// bundleVersion is the tensor bundle format version this reader follows (kTensorBundleVersion).
const bundleVersion = 1

func parseHeader(b []byte) (header, error) {
	var h header
	var shards int64 // absent when 0: protobuf leaves out zeros
	err := fields(b, headerTypes, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch num {
		case 1:
			shards = int64(int32(v))
		case 2:
			if v > 1 {
				return fmt.Errorf("unknown endianness %d", v)
			}
			h.big = v == 1
		case 3:
			return fields(sub, versionTypes, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				switch num {
				case 1:
					h.producer = int64(v)
				case 2:
					h.minConsumer = int64(v)
				case 3:
					if v == bundleVersion {
						return fmt.Errorf("bundle marks reader version %d as bad", v)
					}
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return h, convert.Invalidf("bundle header: %v", err)
	}
	if shards < 1 || shards > maxShards {
		return h, convert.Invalidf("bundle header: %d shards", shards)
	}
	if h.minConsumer > bundleVersion {
		return h, convert.Invalidf("bundle needs a reader of version %d; this one reads version %d", h.minConsumer, bundleVersion)
	}
	h.shards = int(shards)
	return h, nil
}

// bundleEntry is a BundleEntryProto: dtype = 1, shape = 2, shard_id = 3,
// offset = 4, size = 5, crc32c = 6 (fixed32, masked), slices = 7.
type bundleEntry struct {
	dtype            uint64
	shape            []int64
	shard, off, size int64
	crc              uint32
	slices           int
}

func parseEntry(b []byte) (bundleEntry, error) {
	e := bundleEntry{shape: []int64{}}
	err := fields(b, entryTypes, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch num {
		case 1:
			e.dtype = v
		case 2:
			return parseShape(sub, &e.shape)
		case 3:
			e.shard = int64(int32(v))
		case 4:
			e.off = int64(v)
		case 5:
			e.size = int64(v)
		case 6:
			e.crc = uint32(v)
		case 7:
			e.slices++
		}
		return nil
	})
	return e, err
}

// parseShape reads a TensorShapeProto: dim = 2 (Dim: size = 1, name = 2), unknown_rank = 3.
func parseShape(b []byte, shape *[]int64) error {
	return fields(b, shapeTypes, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch num {
		case 2:
			if len(*shape) >= convert.MaxRank {
				return fmt.Errorf("rank exceeds the limit of %d", convert.MaxRank)
			}
			size := int64(0)
			err := fields(sub, dimTypes, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if num == 1 {
					size = int64(v)
				}
				return nil
			})
			if size < 0 {
				return fmt.Errorf("shape has an unknown dimension")
			}
			*shape = append(*shape, size)
			return err
		case 3:
			if v != 0 {
				return fmt.Errorf("shape has unknown rank")
			}
		}
		return nil
	})
}

// Wire types of the fields read above: a known field with another wire
// type is an error, not a silent misread.
var (
	headerTypes  = wireTypes{1: protowire.VarintType, 2: protowire.VarintType, 3: protowire.BytesType}
	versionTypes = wireTypes{1: protowire.VarintType, 2: protowire.VarintType, 3: protowire.VarintType}
	entryTypes   = wireTypes{1: protowire.VarintType, 2: protowire.BytesType, 3: protowire.VarintType, 4: protowire.VarintType,
		5: protowire.VarintType, 6: protowire.Fixed32Type, 7: protowire.BytesType}
	shapeTypes = wireTypes{2: protowire.BytesType, 3: protowire.VarintType}
	dimTypes   = wireTypes{1: protowire.VarintType, 2: protowire.BytesType}
)

type wireTypes map[protowire.Number]protowire.Type

// fields walks a message held in memory, calling fn with each field's
// number, type, scalar value (varint, fixed32, fixed64) or payload (bytes).
func fields(b []byte, want wireTypes, fn func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %v", protowire.ParseError(n))
		}
		if t, ok := want[num]; ok && t != typ {
			return fmt.Errorf("malformed protobuf: field %d has wire type %d, want %d", num, typ, t)
		}
		b = b[n:]
		var v uint64
		var sub []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			sub, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("malformed protobuf: wire type %d", typ)
		}
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, sub); err != nil {
			return err
		}
	}
	return nil
}
