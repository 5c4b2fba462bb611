// Turning a walked TensorProto or SparseTensorProto into an entry: where its
// bytes are (inline raw_data, a typed repeated field, an external data file,
// or a sparse pair of values and indices), checked against its shape before
// anything is streamed.
//
// External data (onnx.proto external_data: location, offset, length) must be
// a relative path below the model's directory: absolute paths, ".." and
// backslashes are refused, and offset and length must fit the data file and
// match the shape. Sparse tensors expand to at most Limits.MaxInflateBytes,
// and to at most Limits.MaxInflateRatio times their stored bytes (1 MiB
// always allowed), or are skipped.

package onnx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"gocloud.dev/gcerrors"
	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

type kind uint8

const (
	kindEmpty    kind = iota // no values
	kindInline               // a few bytes kept in memory (value_float, value_int)
	kindRaw                  // raw_data in the model file
	kindExternal             // a range of an external data file
	kindField                // a typed repeated field: walk the message again
	kindSparse               // values and indices, expanded while streaming
)

// entry says where a tensor's bytes are. Storage bytes are ONNX's raw_data
// layout (little-endian, 4- and 2-bit types packed); Values decodes them.
type entry struct {
	kind   kind
	typ    *elemType
	numel  int64
	inline []byte
	off, n int64  // kindRaw, kindExternal
	loc    string // kindExternal
	msgOff int64  // kindField: the message holding the field
	msgEnd int64
	field  protowire.Number
	elem   protowire.Type // kindField: wire type of one unpacked element
	vals   *entry         // kindSparse
	idx    *entry         // kindSparse: int64 indices
	dims   []int64        // kindSparse: the dense shape
	coords bool           // kindSparse: indices are [nnz, rank] coordinates, not linear
}

func (wk *walker) addDense(tp *tensorProto, name, op string, fallback bool) error {
	if name == "" {
		name = tp.name
	}
	e, reason, err := wk.dense(tp, name)
	if err != nil {
		return err
	}
	if reason != "" {
		wk.skip(name, reason)
		return nil
	}
	return wk.add(item{t: convert.Tensor{Name: name, LayerType: op, DType: e.typ.dtype, Shape: tp.dims}, e: e, fallback: fallback, consumer: op == ""})
}

// dense checks a TensorProto's data against its type and shape.
func (wk *walker) dense(tp *tensorProto, name string) (e *entry, skip string, err error) {
	et := typeOf(tp.dataType)
	if tp.segment {
		return nil, "segmented tensors are not supported", nil
	}
	if et.skip != "" {
		return nil, et.skip, nil
	}
	if tp.dims == nil {
		tp.dims = []int64{}
	}
	numel, err := convert.CheckedNumel(tp.dims, max(et.dtype.Size(), et.unit()))
	if err != nil {
		return nil, "", fmt.Errorf("tensor %q: %w", name, err)
	}
	storage := et.storageBytes(numel)
	e = &entry{typ: et, numel: numel}
	typed := false
	for num, n := range tp.counts {
		if n == 0 {
			continue
		}
		typed = true
		if num != et.field {
			return nil, "", convert.Invalidf("tensor %q: %s data stored in field %d, which does not hold that type", name, et.name, num)
		}
	}
	switch {
	case tp.location == 1:
		if tp.raw != nil || typed {
			return nil, "", convert.Invalidf("tensor %q: has both external and inline data", name)
		}
		if err := wk.external(e, tp, name, storage); err != nil {
			return nil, "", err
		}
	case tp.location != 0:
		return nil, "", convert.Invalidf("tensor %q: unknown data_location %d", name, tp.location)
	case tp.raw != nil:
		if tp.raw.n != storage {
			return nil, "", convert.Invalidf("tensor %q: raw_data is %d bytes, shape %v of %s needs %d", name, tp.raw.n, tp.dims, et.name, storage)
		}
		e.kind, e.off, e.n = kindRaw, tp.raw.off, tp.raw.n
	case typed:
		got, want := tp.counts[et.field], storage/int64(et.unit())
		if got != want {
			return nil, "", convert.Invalidf("tensor %q: holds %d values in field %d, shape %v of %s needs %d", name, got, et.field, tp.dims, et.name, want)
		}
		e.kind, e.msgOff, e.msgEnd, e.field, e.elem = kindField, tp.msg.off, tp.msg.off+tp.msg.n, et.field, elemWire[et.field]
	case numel == 0:
		e.kind = kindEmpty
	default:
		return nil, fmt.Sprintf("holds no data for its %d values", numel), nil
	}
	return e, "", nil
}

// external checks an external data reference and points e at it.
func (wk *walker) external(e *entry, tp *tensorProto, name string, storage int64) error {
	loc, ok := tp.ext["location"]
	if !ok || loc == "" {
		return convert.Invalidf("tensor %q: external data without a location", name)
	}
	clean, err := cleanLocation(loc)
	if err != nil {
		return convert.Invalidf("tensor %q: %v", name, err)
	}
	num := func(key string) (int64, bool, error) {
		s, ok := tp.ext[key]
		if !ok {
			return 0, false, nil
		}
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v < 0 {
			return 0, false, convert.Invalidf("tensor %q: external data %s %q is not a byte count", name, key, s)
		}
		return v, true, nil
	}
	off, _, err := num("offset")
	if err != nil {
		return err
	}
	length, hasLength, err := num("length")
	if err != nil {
		return err
	}
	size, err := wk.ck.extSize(wk.ctx, clean)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	if off > size {
		return convert.Invalidf("tensor %q: external data offset %d is past the end of %q (%d bytes)", name, off, clean, size)
	}
	if !hasLength {
		length = size - off
	}
	if length > size-off {
		return convert.Invalidf("tensor %q: external data ends at byte %d, past the end of %q (%d bytes)", name, off+length, clean, size)
	}
	if length != storage {
		return convert.Invalidf("tensor %q: external data is %d bytes, shape %v of %s needs %d", name, length, tp.dims, e.typ.name, storage)
	}
	e.kind, e.loc, e.off, e.n = kindExternal, clean, off, length
	return nil
}

// cleanLocation accepts only a relative, slash-separated path that stays
// below the model's directory.
func cleanLocation(loc string) (string, error) {
	switch {
	case strings.ContainsAny(loc, "\\\x00"):
		return "", fmt.Errorf("external data location %q has a backslash or NUL; only relative slash-separated paths are read", loc)
	case strings.HasPrefix(loc, "/") || (len(loc) >= 2 && loc[1] == ':'):
		return "", fmt.Errorf("external data location %q is an absolute path; only paths relative to the model are read", loc)
	}
	for _, seg := range strings.Split(loc, "/") {
		if seg == ".." {
			return "", fmt.Errorf("external data location %q leaves the model's directory", loc)
		}
	}
	clean := path.Clean(loc)
	if clean == "." {
		return "", fmt.Errorf("external data location %q names no file", loc)
	}
	return clean, nil
}

// sparseProto walks a SparseTensorProto: values = 1, indices = 2, dims = 3.
func (wk *walker) addSparse(f field, name, op string, fallback bool) error {
	var vals, idx *tensorProto
	var dims []int64
	err := wk.each(f, func(g field) error {
		var err error
		switch g.num {
		case 1:
			if err = g.want(protowire.BytesType, "sparse values"); err == nil {
				vals, err = wk.tensorProto(g)
			}
		case 2:
			if err = g.want(protowire.BytesType, "sparse indices"); err == nil {
				idx, err = wk.tensorProto(g)
			}
		case 3:
			dims, err = wk.dims(g, dims)
		}
		return err
	})
	if err != nil {
		return err
	}
	if vals == nil {
		return convert.Invalidf("sparse tensor %q at byte %d has no values", name, f.at)
	}
	if name == "" {
		name = vals.name
	}
	if dims == nil {
		dims = []int64{}
	}
	e, reason, err := wk.sparse(vals, idx, dims, name)
	if err != nil {
		return err
	}
	if reason != "" {
		wk.skip(name, reason)
		return nil
	}
	return wk.add(item{t: convert.Tensor{Name: name, LayerType: op, DType: e.typ.dtype, Shape: dims}, e: e, fallback: fallback, consumer: op == ""})
}

func (wk *walker) sparse(vals, idx *tensorProto, dims []int64, name string) (*entry, string, error) {
	ve, reason, err := wk.dense(vals, name)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	if len(vals.dims) != 1 {
		return nil, "", convert.Invalidf("sparse tensor %q: values have shape %v, want one dimension", name, vals.dims)
	}
	nnz := vals.dims[0]
	et := ve.typ
	numel, err := convert.CheckedNumel(dims, et.dtype.Size())
	if err != nil {
		return nil, "", fmt.Errorf("sparse tensor %q: %w", name, err)
	}
	if nnz > numel {
		return nil, "", convert.Invalidf("sparse tensor %q: %d values for shape %v", name, nnz, dims)
	}
	e := &entry{kind: kindSparse, typ: et, numel: numel, vals: ve, dims: dims}
	stored := ve.typ.storageBytes(nnz)
	if nnz > 0 {
		if idx == nil {
			return nil, "", convert.Invalidf("sparse tensor %q has values but no indices", name)
		}
		if idx.dataType != 7 {
			return nil, "", convert.Invalidf("sparse tensor %q: indices are %s, want INT64", name, typeOf(idx.dataType).name)
		}
		switch {
		case len(idx.dims) == 1 && idx.dims[0] == nnz:
		case len(idx.dims) == 2 && idx.dims[0] == nnz && idx.dims[1] == int64(len(dims)):
			e.coords = true
		default:
			return nil, "", convert.Invalidf("sparse tensor %q: indices have shape %v, want [%d] or [%d %d]", name, idx.dims, nnz, nnz, len(dims))
		}
		ie, reason, err := wk.dense(idx, name+" indices")
		if err != nil || reason != "" {
			return nil, reason, err
		}
		e.idx = ie
		stored += ie.typ.storageBytes(ie.numel)
	}
	dense := numel * int64(et.dtype.Size())
	if dense > wk.lim.MaxInflateBytes || (dense > 1<<20 && dense/max(stored, 1) > wk.lim.MaxInflateRatio) {
		return nil, fmt.Sprintf("sparse tensor of %d stored bytes expands to %d bytes, over the limit", stored, dense), nil
	}
	return e, "", nil
}

// extFile is an external data file, opened once when the model is read.
type extFile struct {
	src  convert.Source // nil when closed to bound open files; reopened per stream
	size int64
}

// maxOpenExt bounds how many external files stay open (one file per tensor is common).
const maxOpenExt = 16

func (c *checkpoint) extSize(ctx context.Context, loc string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.ext[loc]; ok {
		return f.size, nil
	}
	src, err := c.openExt(ctx, loc)
	if err != nil {
		return 0, err
	}
	f := &extFile{src: src, size: src.Size()}
	if c.open >= maxOpenExt {
		closeSource(src)
		f.src = nil
	} else {
		c.open++
	}
	c.ext[loc] = f
	return f.size, nil
}

func (c *checkpoint) openExt(ctx context.Context, loc string) (convert.Source, error) {
	src, err := c.src.Sibling(ctx, loc)
	if errors.Is(err, fs.ErrNotExist) || gcerrors.Code(err) == gcerrors.NotFound {
		return nil, convert.Invalidf("external data file %q is missing", loc)
	}
	if err != nil {
		return nil, fmt.Errorf("opening external data %q: %w", loc, err)
	}
	return src, nil
}

func closeSource(src convert.Source) {
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
}
