// Package gguf reads llama.cpp / ggml GGUF files (versions 2 and 3, little-
// and big-endian, single files and NAME-00001-of-0000N.gguf splits) as
// checkpoints. It follows the GGUF spec (ggml docs/gguf.md) and ggml's
// reader (ggml/src/gguf.cpp); quantized tensors are dequantized to float32
// exactly as ggml's reference dequantize_row_* functions do (dequant.go).
//
// Written by hand rather than with github.com/gpustack/gguf-parser-go: that
// module pulls in 45 packages for memory estimation and model registries we
// do not need, and it validates like llama.cpp, refusing files whose
// metadata llama.cpp would not load (general.file_type as a string) but whose
// tensors we can still export.
//
// Limits enforced: the header (counts, metadata, tensor infos) is bounded by
// Limits.MaxHeaderBytes, the tensor count by Limits.MaxTensors, every length
// by the bytes left; tensors have at most 4 dimensions, offsets aligned to
// general.alignment (a power of two, default 32), data inside the file and
// not overlapping. Values stream block by block in bounded memory.
package gguf

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"regexp"
	"slices"

	"ckpt2csv/convert"
)

func init() {
	convert.Register(convert.Format{
		Name:  "gguf",
		Match: func(_ convert.Source, head []byte) bool { return len(head) >= 4 && string(head[:4]) == magic },
		Open:  Open,
	})
}

// tensor is one exported tensor: where its bytes are and how to read them.
type tensor struct {
	src    convert.Source
	off    int64 // absolute offset in src
	nbytes int64
	typ    *ggmlType
	order  binary.ByteOrder
}

type checkpoint struct {
	info    convert.Info
	tensors []tensor // parallel to info.Tensors
	closers []io.Closer
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

func (c *checkpoint) Close() error {
	var first error
	for _, cl := range c.closers {
		if err := cl.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.closers = nil
	return first
}

// splitName matches llama.cpp's split file names (llama_split_path: "%s-%05d-of-%05d.gguf").
var splitName = regexp.MustCompile(`^(.+)-([0-9]{5})-of-([0-9]{5})\.gguf$`)

// Open reads the header of src (and of its sibling splits) and checks every
// tensor's extent; tensor data is read only by Values.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	defer func() {
		if r := recover(); r != nil {
			ck, err = nil, convert.Invalidf("malformed GGUF file (%v)", r)
		}
	}()
	lim = lim.Defaults()
	h, err := parseHeader(src, lim.MaxHeaderBytes, lim.MaxTensors)
	if err != nil {
		return nil, err
	}
	c := &checkpoint{info: convert.Info{Format: "gguf", Metadata: map[string]any{}}}
	for _, k := range h.keys {
		c.info.Metadata[k] = h.kv[k]
	}
	c.info.Metadata["gguf_version"] = h.version

	count, isSplit := h.ints["split.count"]
	if !isSplit || count <= 1 {
		if err := c.add(src, h); err != nil {
			return nil, err
		}
		c.noteEmpty(src)
		return c, nil
	}
	if err := c.openSplits(ctx, src, h, count, lim); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// noteEmpty records that a file with no tensors exports nothing.
func (c *checkpoint) noteEmpty(src convert.Source) {
	if len(c.info.Tensors) == 0 && len(c.info.Skipped) == 0 {
		c.info.Skipped = append(c.info.Skipped, convert.Skipped{
			Name:   convert.BaseName(src),
			Reason: "the file holds no tensors, only metadata (a vocabulary or configuration GGUF): nothing to export",
		})
	}
}

// openSplits reads every split of a split checkpoint from its first file.
// A later split opened on its own exports nothing: its tensors belong to
// the export of split 1, so a glob over all splits exports each tensor once.
func (c *checkpoint) openSplits(ctx context.Context, src convert.Source, h *header, count int64, lim convert.Limits) error {
	no := h.ints["split.no"]
	base := convert.BaseName(src)
	m := splitName.FindStringSubmatch(base)
	if no != 0 {
		first := fmt.Sprintf("split 1 (NAME-00001-of-%05d.gguf)", count)
		if m != nil {
			first = fmt.Sprintf("%s-00001-of-%s.gguf", m[1], m[3])
		}
		c.info.Skipped = append(c.info.Skipped, convert.Skipped{
			Name:   base,
			Reason: fmt.Sprintf("split %d of %d: its tensors are exported with %s", no+1, count, first),
		})
		return nil
	}
	if m == nil || m[3] != fmt.Sprintf("%05d", count) || m[2] != "00001" {
		return convert.Invalidf("split 1 of %d, but the file name %q does not follow NAME-00001-of-%05d.gguf, so the other splits cannot be found", count, base, count)
	}
	if err := c.add(src, h); err != nil {
		return fmt.Errorf("split 1 of %d: %w", count, err)
	}
	for i := int64(1); i < count; i++ {
		rel := fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i+1, count)
		s, err := src.Sibling(ctx, rel)
		if err != nil {
			return fmt.Errorf("opening split %d of %d (%s): %w", i+1, count, rel, err)
		}
		if cl, ok := s.(io.Closer); ok {
			c.closers = append(c.closers, cl)
		}
		sh, err := parseHeader(s, lim.MaxHeaderBytes, lim.MaxTensors)
		if err != nil {
			return fmt.Errorf("split %d of %d (%s): %w", i+1, count, rel, err)
		}
		if sn, sc := sh.ints["split.no"], sh.ints["split.count"]; sn != i || sc != count {
			return convert.Invalidf("%s says it is split %d of %d, expected split %d of %d", rel, sn+1, sc, i+1, count)
		}
		if err := c.add(s, sh); err != nil {
			return fmt.Errorf("split %d of %d (%s): %w", i+1, count, rel, err)
		}
		if c.nTensors() > lim.MaxTensors {
			return convert.Invalidf("%d tensors in %d splits exceed the limit of %d", c.nTensors(), i+1, lim.MaxTensors)
		}
	}
	if want, ok := h.ints["split.tensors.count"]; ok && want != int64(c.nTensors()) {
		return convert.Invalidf("split.tensors.count is %d, but the %d splits hold %d tensors", want, count, c.nTensors())
	}
	return nil
}

func (c *checkpoint) nTensors() int { return len(c.info.Tensors) + len(c.info.Skipped) }

// add checks the tensors of one file and appends them.
func (c *checkpoint) add(src convert.Source, h *header) error {
	type extent struct {
		name     string
		from, to int64
	}
	var extents []extent
	seen := map[string]bool{}
	for _, t := range c.info.Tensors {
		seen[t.Name] = true
	}
	for _, s := range c.info.Skipped {
		seen[s.Name] = true
	}
	size := src.Size()
	for _, ti := range h.tensors {
		if seen[ti.name] {
			return convert.Invalidf("tensor name %q appears in two splits", ti.name)
		}
		seen[ti.name] = true
		// Row-major shape: ggml lists dimensions innermost first.
		shape := make([]int64, len(ti.ne))
		for j, d := range ti.ne {
			shape[len(ti.ne)-1-j] = d
		}
		if ti.offset%uint64(h.alignment) != 0 {
			return convert.Invalidf("tensor %q: offset %d is not a multiple of the alignment %d", ti.name, ti.offset, h.alignment)
		}
		start, carry := bits.Add64(uint64(h.dataStart), ti.offset, 0)
		if carry != 0 {
			return convert.Invalidf("tensor %q: offset %d is past any file", ti.name, ti.offset)
		}
		if start > uint64(size) {
			return convert.Invalidf("tensor %q: data starts at %d, past the file (%d bytes)", ti.name, start, size)
		}
		t := ggmlTypes[ti.typ]
		if t == nil {
			// Its block size is unknown, so the file's layout cannot be checked:
			// treated as corrupt rather than guessed at.
			return convert.Invalidf("tensor %q: unknown ggml type %d", ti.name, ti.typ)
		}
		if t.size == 0 {
			c.info.Skipped = append(c.info.Skipped, convert.Skipped{Name: ti.name, Reason: skipReason(ti.typ, t)})
			continue
		}
		numel, err := convert.CheckedNumel(shape, max(t.dtype().Size(), 4))
		if err != nil {
			return fmt.Errorf("tensor %q: %w", ti.name, err)
		}
		ne0 := int64(1)
		if len(ti.ne) > 0 {
			ne0 = ti.ne[0]
		}
		if ne0%t.blck != 0 {
			return convert.Invalidf("tensor %q: its rows of %d values are not a whole number of %s blocks of %d", ti.name, ne0, t.name, t.blck)
		}
		hi, nbytes := bits.Mul64(uint64(numel/t.blck), uint64(t.size))
		end, carry := bits.Add64(start, nbytes, 0)
		if hi != 0 || carry != 0 || end > uint64(size) {
			return convert.Invalidf("tensor %q: data ends at %d, past the file (%d bytes)", ti.name, end, size)
		}
		if nbytes > 0 {
			extents = append(extents, extent{ti.name, int64(start), int64(end)})
		}
		switch {
		case !t.exported():
			c.info.Skipped = append(c.info.Skipped, convert.Skipped{Name: ti.name, Reason: skipReason(ti.typ, t)})
			continue
		case h.order == binary.BigEndian && t.native == "":
			c.info.Skipped = append(c.info.Skipped, convert.Skipped{Name: ti.name, Reason: fmt.Sprintf("%s blocks in a big-endian GGUF are not supported", t.name)})
			continue
		}
		c.info.Tensors = append(c.info.Tensors, convert.Tensor{Name: ti.name, DType: t.dtype(), Shape: shape})
		c.tensors = append(c.tensors, tensor{src: src, off: int64(start), nbytes: int64(nbytes), typ: t, order: h.order})
	}
	slices.SortFunc(extents, func(a, b extent) int { return cmp.Compare(a.from, b.from) })
	for i := 1; i < len(extents); i++ {
		if a, b := extents[i-1], extents[i]; b.from < a.to {
			return convert.Invalidf("tensors %q (bytes %d-%d) and %q (bytes %d-%d) overlap", a.name, a.from, a.to, b.name, b.from, b.to)
		}
	}
	return nil
}

// Values streams tensor i: native types as stored (byte-swapped from a
// big-endian file), block types dequantized to float32, block by block.
func (c *checkpoint) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.tensors) {
		return nil, fmt.Errorf("tensor index %d out of range [0, %d)", i, len(c.tensors))
	}
	t := c.tensors[i]
	sec := convert.Section(t.src, t.off, t.nbytes)
	name := c.info.Tensors[i].Name
	switch {
	case t.typ.dequant != nil:
		return newBlockReader(ctx, name, sec, t.nbytes, int(t.typ.size), int(t.typ.blck)*4, dequantTo(t.typ)), nil
	case t.order == binary.BigEndian && t.typ.size > 1:
		return newBlockReader(ctx, name, sec, t.nbytes, int(t.typ.size), int(t.typ.size), swapTo), nil
	}
	return sec, nil
}

// dequantTo converts whole blocks of type t to little-endian float32 bytes.
func dequantTo(t *ggmlType) func(dst, src []byte, unit int, vals []float32) {
	return func(dst, src []byte, unit int, vals []float32) {
		n := int(t.blck)
		for b := 0; b*unit < len(src); b++ {
			v := vals[:n]
			t.dequant(src[b*unit:(b+1)*unit], v)
			out := dst[b*n*4:][:n*4]
			for j := range v {
				binary.LittleEndian.PutUint32(out[4*j:4*j+4], math.Float32bits(v[j]))
			}
		}
	}
}

// swapTo reverses the bytes of each unit-sized value (big-endian to little-endian).
func swapTo(dst, src []byte, unit int, _ []float32) {
	for i := 0; i < len(src); i += unit {
		for j := 0; j < unit; j++ {
			dst[i+j] = src[i+unit-1-j]
		}
	}
}

// blockReader reads whole units (blocks or values) from src in chunks and
// converts each chunk; memory stays at one chunk in and out.
type blockReader struct {
	ctx      context.Context
	name     string
	src      io.ReadCloser
	left     int64 // input bytes still to read
	unit     int   // input bytes per unit
	outUnit  int   // output bytes per unit
	conv     func(dst, src []byte, unit int, vals []float32)
	in, outb []byte
	vals     []float32
	pending  []byte
}

const chunkBytes = 64 << 10 // input read per chunk

func newBlockReader(ctx context.Context, name string, src io.ReadCloser, n int64, unit, outUnit int, conv func(dst, src []byte, unit int, vals []float32)) *blockReader {
	units := max(1, chunkBytes/unit)
	return &blockReader{
		ctx: ctx, name: name, src: src, left: n, unit: unit, outUnit: outUnit, conv: conv,
		in:   make([]byte, units*unit),
		outb: make([]byte, units*outUnit),
		vals: make([]float32, outUnit/4+1),
	}
}

func (r *blockReader) Read(p []byte) (n int, err error) {
	defer func() {
		if e := recover(); e != nil {
			n, err = 0, convert.Invalidf("tensor %q: malformed data (%v)", r.name, e)
		}
	}()
	if len(r.pending) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		k := int(min(int64(len(r.in)), r.left))
		if _, err := io.ReadFull(r.src, r.in[:k]); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return 0, convert.Invalidf("tensor %q: data ends early", r.name)
			}
			return 0, fmt.Errorf("tensor %q: %w", r.name, err)
		}
		r.left -= int64(k)
		units := k / r.unit
		r.conv(r.outb, r.in[:k], r.unit, r.vals)
		r.pending = r.outb[:units*r.outUnit]
	}
	n = copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *blockReader) Close() error { return r.src.Close() }
