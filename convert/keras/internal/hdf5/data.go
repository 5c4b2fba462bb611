// Dataset values (format spec §IV.A.2.i, §III.A, §VII): compact, contiguous
// and chunked storage streamed in C order in bounded memory. Chunked data is
// read run by run through a byte-bounded cache of decoded chunks, so memory
// depends on the chunk shape, never on the dataset size.
package hdf5

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
)

// Dataset is a dataset ready to stream.
type Dataset struct {
	Type    *Datatype
	Space   *Dataspace
	f       *File
	addr    uint64
	lay     *layout
	filters []filter
	fill    []byte
}

// Dataset reads o's dataset messages.
func (o *Object) Dataset() (*Dataset, error) {
	f := o.f
	d := &Dataset{f: f, addr: o.Addr}
	for i := range o.hdr.msgs {
		m := &o.hdr.msgs[i]
		var data []byte
		switch m.typ {
		case msgDatatype, msgDataspace, msgLayout, msgFilter, msgFill, msgFillOld, msgExternal:
			var err error
			if data, err = f.messageData(m); err != nil {
				return nil, err
			}
		default:
			continue
		}
		c := &rd{f: f, b: data}
		switch m.typ {
		case msgDatatype:
			c.what = "datatype message"
			d.Type = parseDatatype(c, 0)
		case msgDataspace:
			c.what = "dataspace message"
			d.Space = parseDataspace(c)
		case msgLayout:
			c.what = "data layout message"
			d.lay = parseLayout(c)
		case msgFilter:
			c.what = "filter pipeline message"
			d.filters = parseFilters(c)
		case msgFill, msgFillOld:
			c.what = "fill value message"
			if fill := parseFill(c, m.typ); c.err == nil && len(fill) > 0 {
				d.fill = fill
			}
			c.err = nil // a fill value we cannot read is not needed when every chunk is written
		case msgExternal:
			return nil, bad("datasets stored in external files are not supported")
		}
		if c.err != nil {
			return nil, c.err
		}
	}
	if d.Type == nil || d.Space == nil || d.lay == nil {
		return nil, bad("dataset at %#x lacks its datatype, dataspace or layout message", o.Addr)
	}
	if len(d.fill) != d.Type.Size {
		d.fill = nil
	}
	return d, nil
}

// Bytes is the size of the dataset's values.
func (d *Dataset) Bytes() (uint64, bool) {
	n, ok := d.Space.Numel()
	if !ok {
		return 0, false
	}
	b := n * uint64(d.Type.Size)
	return b, d.Type.Size == 0 || b/uint64(d.Type.Size) == n
}

// Check verifies, without reading values, that the dataset's storage is
// consistent with its shape and lies in the file.
func (d *Dataset) Check() error {
	total, ok := d.Bytes()
	if !ok || total > 1<<62 {
		return bad("dataset of shape %v is too large", d.Space.Dims)
	}
	l := d.lay
	switch l.class {
	case layoutCompact:
		if uint64(len(l.compact)) < total {
			return bad("compact dataset holds %d bytes, needs %d", len(l.compact), total)
		}
	case layoutContiguous:
		if l.addr == undefAddr || total == 0 {
			return nil
		}
		if l.size != undefAddr && l.size < total {
			return bad("contiguous dataset stores %d bytes, needs %d", l.size, total)
		}
		if !d.f.inFile(l.addr, int64(total)) {
			return bad("dataset data at %#x+%d runs past the end of the file (%d bytes; truncated?)", l.addr, total, d.f.size-d.f.base)
		}
	case layoutChunked:
		if len(d.Space.Dims) == 0 || len(l.chunk) != len(d.Space.Dims) {
			return bad("chunked dataset of rank %d has chunks of rank %d", len(d.Space.Dims), len(l.chunk))
		}
		if l.addr != undefAddr && !d.f.inFile(l.addr, 1) {
			return bad("chunk index at %#x is outside the file (%d bytes; truncated?)", l.addr, d.f.size-d.f.base)
		}
		for _, fl := range d.filters {
			// an optional filter (flag bit 0) may have been skipped on every chunk
			if fl.id > 3 && fl.flags&1 == 0 {
				return bad("%s", unsupportedFilter(fl))
			}
		}
	case layoutVirtual:
		return bad("virtual datasets are not supported")
	default:
		return bad("layout class %d is not supported", l.class)
	}
	return nil
}

// Reader streams the dataset's elements in C order, each as stored (in the
// file's byte order). The stream is exactly Bytes() long.
func (d *Dataset) Reader(ctx context.Context) (io.ReadCloser, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	total, _ := d.Bytes()
	esize := d.Type.Size
	r := &elemReader{ctx: ctx}
	if total == 0 {
		r.next = func() ([]byte, error) { return nil, io.EOF }
		return r, nil
	}
	switch d.lay.class {
	case layoutCompact:
		if uint64(len(d.lay.compact)) < total {
			return nil, bad("compact dataset holds %d bytes, needs %d", len(d.lay.compact), total)
		}
		b := d.lay.compact[:total]
		r.next = func() ([]byte, error) {
			if b == nil {
				return nil, io.EOF
			}
			out := b
			b = nil
			return out, nil
		}
	case layoutContiguous:
		if d.lay.addr == undefAddr {
			r.next = fillStream(d.fill, esize, total)
			break
		}
		if d.lay.size != undefAddr && d.lay.size < total {
			return nil, bad("contiguous dataset stores %d bytes, needs %d", d.lay.size, total)
		}
		if !d.f.inFile(d.lay.addr, int64(total)) {
			return nil, bad("dataset data at %#x+%d runs past the end of the file (%d bytes; truncated?)", d.lay.addr, total, d.f.size-d.f.base)
		}
		pos, left := d.lay.addr, total
		buf := make([]byte, min(total, 1<<20))
		r.next = func() ([]byte, error) {
			if left == 0 {
				return nil, io.EOF
			}
			n := min(left, uint64(len(buf)))
			if err := d.f.readRaw(buf[:n], pos); err != nil {
				return nil, err
			}
			pos += n
			left -= n
			return buf[:n], nil
		}
	case layoutChunked:
		cr, err := d.chunked()
		if err != nil {
			return nil, err
		}
		r.next = cr.next
	case layoutVirtual:
		return nil, bad("virtual datasets are not supported")
	default:
		return nil, bad("layout class %d is not supported", d.lay.class)
	}
	return r, nil
}

type elemReader struct {
	ctx  context.Context
	buf  []byte
	next func() ([]byte, error)
	err  error
}

func (r *elemReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		r.buf, r.err = r.next()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *elemReader) Close() error { return nil }

// fillStream yields total bytes of the fill value (zeros when none).
func fillStream(fill []byte, esize int, total uint64) func() ([]byte, error) {
	blockElems := max(1, (1<<20)/esize)
	buf := make([]byte, min(total, uint64(blockElems*esize)))
	if fill != nil {
		for i := 0; i+esize <= len(buf); i += esize {
			copy(buf[i:], fill)
		}
	}
	left := total
	return func() ([]byte, error) {
		if left == 0 {
			return nil, io.EOF
		}
		n := min(left, uint64(len(buf)))
		left -= n
		return buf[:n], nil
	}
}

type chunkEntry struct {
	addr uint64
	size uint64
	mask uint32
}

// chunkReader walks the dataset in C order, one run (a stretch of the last
// dimension inside one chunk) at a time.
type chunkReader struct {
	d          *Dataset
	dims       []uint64
	chunk      []uint64
	grid       []uint64 // chunks per dimension
	chunkBytes uint64
	esize      uint64
	lookup     func(scaled []uint64) (chunkEntry, bool, error)
	cache      chunkCache
	// unwritten chunks stream the fill value from a small repeating pattern
	fillPattern []byte
	fillRun     uint64 // bytes of the current fill run still to emit
	outCap      int    // size of the gathering buffer: outBlock, or less for small datasets

	row    []uint64 // indices of dims 0..r-2
	col    uint64   // chunk column along the last dimension
	done   bool
	out    []byte
	scaled []uint64
}

const (
	runDirect  = 64 << 10  // runs at least this long are passed on without a copy
	outBlock   = 1 << 20   // small runs are gathered into blocks of this size
	cacheBytes = 256 << 20 // decoded chunks kept for reuse
)

func (d *Dataset) chunked() (*chunkReader, error) {
	dims := d.Space.Dims
	l := d.lay
	rank := len(dims)
	if rank == 0 || len(l.chunk) != rank {
		return nil, bad("chunked dataset of rank %d has chunks of rank %d", rank, len(l.chunk))
	}
	if l.elemSizeChunk != 0 && l.elemSizeChunk != uint32(d.Type.Size) {
		return nil, bad("chunk element size %d differs from the datatype's %d", l.elemSizeChunk, d.Type.Size)
	}
	cr := &chunkReader{d: d, dims: dims, chunk: l.chunk, esize: uint64(d.Type.Size)}
	cb := cr.esize
	cr.grid = make([]uint64, rank)
	for i, c := range l.chunk {
		if c == 0 {
			return nil, bad("chunk dimension %d is zero", i)
		}
		cb *= c
		if cb > MaxChunkBytes {
			return nil, bad("chunks of %v elements exceed the %d-byte limit for one chunk", l.chunk, MaxChunkBytes)
		}
		cr.grid[i] = (dims[i] + c - 1) / c
	}
	cr.chunkBytes = cb
	// Runs go through the chunks of one band (one chunk row along the first
	// dimension) over and over, then never return to them: keep one band.
	band := cb
	for _, g := range cr.grid[1:] {
		band = min(band*max(g, 1), cacheBytes)
	}
	cr.cache.init(max(min(band, cacheBytes), cb))
	total, _ := d.Bytes()
	cr.outCap = int(min(total, outBlock))
	cr.fillPattern = make([]byte, min(max((64<<10)/cr.esize, 1)*cr.esize, max(total, cr.esize)))
	if f := d.fill; f != nil {
		for i := 0; i+len(f) <= len(cr.fillPattern); i += len(f) {
			copy(cr.fillPattern[i:], f)
		}
	}
	var err error
	switch l.index {
	case idxBTreeV1:
		err = cr.btreeV1Index()
	case idxBTreeV2:
		err = cr.btreeV2Index()
	case idxSingle:
		size := cb
		if l.singleFilt {
			size = l.singleSize
		}
		e := chunkEntry{addr: l.addr, size: size, mask: l.singleMask}
		cr.lookup = func(s []uint64) (chunkEntry, bool, error) {
			for _, v := range s {
				if v != 0 {
					return chunkEntry{}, false, nil
				}
			}
			return e, l.addr != undefAddr, nil
		}
	case idxImplicit:
		mg := cr.maxGrid()
		cr.lookup = func(s []uint64) (chunkEntry, bool, error) {
			if l.addr == undefAddr {
				return chunkEntry{}, false, nil
			}
			lin := linear(s, mg)
			return chunkEntry{addr: l.addr + lin*cb, size: cb}, true, nil
		}
	case idxFixedArr:
		err = cr.fixedArrayIndex()
	case idxExtArr:
		err = cr.extensibleArrayIndex()
	default:
		return nil, bad("chunk index type %d is not supported", l.index)
	}
	if err != nil {
		return nil, err
	}
	if rank > 1 {
		cr.row = make([]uint64, rank-1)
	}
	cr.scaled = make([]uint64, rank)
	for _, v := range dims {
		if v == 0 {
			cr.done = true
		}
	}
	return cr, nil
}

// maxGrid is the chunk grid over the maximum dimensions (what fixed-array
// and implicit indexes are laid out by).
func (cr *chunkReader) maxGrid() []uint64 {
	ms := cr.d.Space.MaxDims
	g := make([]uint64, len(cr.grid))
	for i := range g {
		m := cr.dims[i]
		if ms != nil && ms[i] != undefAddr && ms[i] > m {
			m = ms[i]
		}
		g[i] = (m + cr.chunk[i] - 1) / cr.chunk[i]
	}
	return g
}

func linear(s, grid []uint64) uint64 {
	var lin uint64
	for i, v := range s {
		lin = lin*grid[i] + v
	}
	return lin
}

func (cr *chunkReader) mapIndex(m map[uint64]chunkEntry) {
	cr.lookup = func(s []uint64) (chunkEntry, bool, error) {
		e, ok := m[linear(s, cr.grid)]
		return e, ok, nil
	}
}

func (cr *chunkReader) addEntry(m map[uint64]chunkEntry, scaled []uint64, e chunkEntry) error {
	for i, v := range scaled {
		if v >= cr.grid[i] {
			return bad("chunk at %v lies outside the dataset's %v chunks", scaled, cr.grid)
		}
	}
	lin := linear(scaled, cr.grid)
	if _, dup := m[lin]; dup {
		return bad("chunk %v is indexed twice", scaled)
	}
	m[lin] = e
	return nil
}

func (cr *chunkReader) btreeV1Index() error {
	f := cr.d.f
	rank := len(cr.dims)
	m := map[uint64]chunkEntry{}
	scaled := make([]uint64, rank)
	err := f.btreeV1(cr.d.lay.addr, 1, 8+8*(rank+1), func(key []byte, child uint64) error {
		c := &rd{f: f, b: key, what: "chunk B-tree key"}
		size := uint64(c.u32())
		mask := c.u32()
		for i := 0; i < rank; i++ {
			off := c.u64()
			if off%cr.chunk[i] != 0 {
				return bad("chunk offset %d is not a multiple of the chunk size %d", off, cr.chunk[i])
			}
			scaled[i] = off / cr.chunk[i]
		}
		if c.err != nil {
			return c.err
		}
		return cr.addEntry(m, scaled, chunkEntry{addr: child, size: size, mask: mask})
	})
	if err != nil {
		return err
	}
	cr.mapIndex(m)
	return nil
}

func (cr *chunkReader) btreeV2Index() error {
	f := cr.d.f
	rank := len(cr.dims)
	filtered := len(cr.d.filters) > 0
	typ := uint8(10)
	if filtered {
		typ = 11
	}
	m := map[uint64]chunkEntry{}
	scaled := make([]uint64, rank)
	err := f.btreeV2(cr.d.lay.addr, typ, func(r []byte) error {
		c := &rd{f: f, b: r, what: "chunk B-tree v2 record"}
		e := chunkEntry{addr: c.addr(), size: cr.chunkBytes}
		if filtered {
			sizeLen := len(r) - f.offSize - 4 - 8*rank
			if sizeLen < 1 || sizeLen > 8 {
				return bad("chunk record of %d bytes", len(r))
			}
			e.size = c.uvar(sizeLen)
			e.mask = c.u32()
		}
		for i := range scaled {
			scaled[i] = c.u64()
		}
		if c.err != nil {
			return c.err
		}
		return cr.addEntry(m, scaled, e)
	})
	if err != nil {
		return err
	}
	cr.mapIndex(m)
	return nil
}

func (cr *chunkReader) fixedArrayIndex() error {
	f := cr.d.f
	addr := cr.d.lay.addr
	if addr == undefAddr {
		cr.lookup = func([]uint64) (chunkEntry, bool, error) { return chunkEntry{}, false, nil }
		return nil
	}
	hl := int64(4 + 1 + 1 + 1 + 1 + f.lenSize + f.offSize + 4)
	b, err := f.read(addr, hl, "fixed array header")
	if err != nil {
		return err
	}
	if err := checksum(b, "fixed array header"); err != nil {
		return err
	}
	c := &rd{f: f, b: b, what: "fixed array header"}
	c.sig("FAHD")
	c.u8()
	client := c.u8()
	entry := int(c.u8())
	pageBits := int(c.u8())
	nelem := c.length()
	dblk := c.addr()
	if c.err != nil {
		return c.err
	}
	filtered := client == 1
	if (client != 0 && client != 1) || entry < f.offSize || (filtered && entry < f.offSize+5) || entry > f.offSize+12 || pageBits > 32 {
		return bad("fixed array chunk index has an impossible geometry")
	}
	if dblk == undefAddr {
		cr.lookup = func([]uint64) (chunkEntry, bool, error) { return chunkEntry{}, false, nil }
		return nil
	}
	pageElems := uint64(1) << pageBits
	paged := nelem > pageElems
	var npages, bitmapLen uint64
	if paged {
		npages = (nelem + pageElems - 1) / pageElems
		bitmapLen = (npages + 7) / 8
	}
	prefix := uint64(4 + 1 + 1 + f.offSize)
	var bitmap []byte
	if paged {
		if b, err = f.read(dblk, int64(prefix+bitmapLen+4), "fixed array data block"); err != nil {
			return err
		}
		if err := checksum(b, "fixed array data block"); err != nil {
			return err
		}
		bitmap = b[prefix : prefix+bitmapLen]
	} else {
		if nelem > maxMetaBlock/uint64(entry) {
			return bad("fixed array of %d entries", nelem)
		}
		if b, err = f.read(dblk, int64(prefix+nelem*uint64(entry)+4), "fixed array data block"); err != nil {
			return err
		}
		if err := checksum(b, "fixed array data block"); err != nil {
			return err
		}
	}
	if string(b[:4]) != "FADB" {
		return bad("fixed array data block has a bad signature")
	}
	mg := cr.maxGrid()
	cr.lookup = func(s []uint64) (chunkEntry, bool, error) {
		idx := linear(s, mg)
		if idx >= nelem {
			return chunkEntry{}, false, bad("chunk %v is past the fixed array's %d entries", s, nelem)
		}
		var raw []byte
		if !paged {
			p := prefix + idx*uint64(entry)
			raw = b[p : p+uint64(entry)]
		} else {
			page := idx / pageElems
			if bitmap[page/8]&(0x80>>(page%8)) == 0 {
				return chunkEntry{}, false, nil
			}
			pageBytes := pageElems*uint64(entry) + 4
			at := dblk + prefix + bitmapLen + 4 + page*pageBytes + (idx%pageElems)*uint64(entry)
			var err error
			if raw, err = f.read(at, int64(entry), "fixed array page"); err != nil {
				return chunkEntry{}, false, err
			}
		}
		c := &rd{f: f, b: raw, what: "fixed array entry"}
		e := chunkEntry{addr: c.addr(), size: cr.chunkBytes}
		if filtered {
			e.size = c.uvar(entry - f.offSize - 4)
			e.mask = c.u32()
		}
		if c.err != nil {
			return chunkEntry{}, false, c.err
		}
		return e, e.addr != undefAddr, nil
	}
	return nil
}

// next returns the next stretch of output.
func (cr *chunkReader) next() ([]byte, error) {
	cr.out = cr.out[:0]
	rank := len(cr.dims)
	last := rank - 1
	for !cr.done {
		// the run at (row, col)
		var off uint64 // element offset inside the chunk
		stride := uint64(1)
		for k := last; k >= 0; k-- {
			var i uint64
			if k < last {
				i = cr.row[k]
				cr.scaled[k] = i / cr.chunk[k]
			} else {
				cr.scaled[k] = cr.col
			}
			off += (i % cr.chunk[k]) * stride
			stride *= cr.chunk[k]
		}
		n := min(cr.chunk[last], cr.dims[last]-cr.col*cr.chunk[last])
		data, err := cr.chunkData(cr.scaled)
		if err != nil {
			return nil, err
		}
		if data == nil { // an unwritten chunk: the fill value
			if cr.out == nil {
				cr.out = make([]byte, 0, cr.outCap)
			}
			if cr.fillRun == 0 {
				cr.fillRun = n * cr.esize
			}
			for cr.fillRun > 0 && len(cr.out) < cr.outCap {
				k := min(cr.fillRun, uint64(cr.outCap-len(cr.out)), uint64(len(cr.fillPattern)))
				cr.out = append(cr.out, cr.fillPattern[:k]...)
				cr.fillRun -= k
			}
			if cr.fillRun > 0 {
				return cr.out, nil // the rest of this run next time
			}
			cr.advance()
			if len(cr.out) >= outBlock-runDirect {
				return cr.out, nil
			}
			continue
		}
		run := data[off*cr.esize : (off+n)*cr.esize]
		cr.advance()
		if len(run) >= runDirect {
			if len(cr.out) > 0 {
				// hand over what was gathered; this run comes next time
				cr.unadvance()
				return cr.out, nil
			}
			return run, nil
		}
		if cr.out == nil {
			cr.out = make([]byte, 0, cr.outCap)
		}
		cr.out = append(cr.out, run...)
		if len(cr.out) >= outBlock-runDirect {
			return cr.out, nil
		}
	}
	if len(cr.out) > 0 {
		return cr.out, nil
	}
	return nil, io.EOF
}

// advance moves to the next run in C order.
func (cr *chunkReader) advance() {
	last := len(cr.dims) - 1
	cr.col++
	if cr.col < cr.grid[last] {
		return
	}
	cr.col = 0
	for k := last - 1; k >= 0; k-- {
		cr.row[k]++
		if cr.row[k] < cr.dims[k] {
			return
		}
		cr.row[k] = 0
	}
	cr.done = true
}

// unadvance steps back one run (only ever right after advance).
func (cr *chunkReader) unadvance() {
	last := len(cr.dims) - 1
	cr.done = false
	if cr.col > 0 {
		cr.col--
		return
	}
	cr.col = cr.grid[last] - 1
	for k := last - 1; k >= 0; k-- {
		if cr.row[k] > 0 {
			cr.row[k]--
			return
		}
		cr.row[k] = cr.dims[k] - 1
	}
}

// chunkData returns the decoded bytes of the chunk at scaled coordinates s,
// or nil when the chunk was never written.
func (cr *chunkReader) chunkData(s []uint64) ([]byte, error) {
	key := linear(s, cr.grid)
	if b := cr.cache.get(key); b != nil {
		return b, nil
	}
	e, ok, err := cr.lookup(s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	if e.size == 0 || e.size > MaxChunkBytes+(1<<20) {
		return nil, bad("chunk %v declares %d stored bytes", s, e.size)
	}
	if !cr.d.f.inFile(e.addr, int64(e.size)) {
		return nil, bad("chunk %v at %#x+%d runs past the end of the file (%d bytes; truncated?)", s, e.addr, e.size, cr.d.f.size-cr.d.f.base)
	}
	raw := make([]byte, e.size)
	if err := cr.d.f.readRaw(raw, e.addr); err != nil {
		return nil, err
	}
	filters := cr.d.filters
	if cr.d.lay.noFilterEdge && cr.partial(s) {
		filters = nil
	}
	data, fe := unfilter(raw, filters, e.mask, int(cr.chunkBytes), cr.d.Type.Size)
	if fe != nil {
		return nil, bad("chunk %v: %s", s, fe.msg)
	}
	cr.cache.put(key, data)
	return data, nil
}

func (cr *chunkReader) partial(s []uint64) bool {
	for i, v := range s {
		if (v+1)*cr.chunk[i] > cr.dims[i] {
			return true
		}
	}
	return false
}

// filterError says why a chunk could not be decoded.
type filterError struct{ msg string }

func ferr(format string, a ...any) *filterError { return &filterError{fmt.Sprintf(format, a...)} }

// unfilter undoes the filter pipeline (last filter first); the result must be exactly want bytes.
func unfilter(b []byte, fs []filter, mask uint32, want, esize int) ([]byte, *filterError) {
	for i := len(fs) - 1; i >= 0; i-- {
		if mask&(1<<uint(i)) != 0 {
			continue
		}
		fl := fs[i]
		switch fl.id {
		case 1: // deflate
			zr, err := zlib.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, ferr("deflate data is corrupt (%v)", err)
			}
			limit := want + 8*len(fs)
			// deflate expands at most about 1032:1; size the buffer by that, not by the header
			out := bytes.NewBuffer(make([]byte, 0, min(limit, 1100*len(b)+4096)))
			n, err := io.Copy(out, io.LimitReader(zr, int64(limit)+1))
			if err != nil {
				return nil, ferr("deflate data is corrupt (%v)", err)
			}
			if n > int64(limit) {
				return nil, ferr("deflate data inflates past the chunk's %d bytes", want)
			}
			b = out.Bytes()
		case 2: // shuffle
			size := esize
			if len(fl.cd) > 0 && fl.cd[0] > 0 {
				size = int(fl.cd[0])
			}
			b = unshuffle(b, size)
		case 3: // fletcher32
			if len(b) < 4 {
				return nil, ferr("fletcher32 chunk shorter than its checksum")
			}
			n := len(b) - 4
			stored := binary.LittleEndian.Uint32(b[n:])
			sum := fletcher32(b[:n])
			swapped := sum>>24 | (sum>>8)&0xff00 | (sum<<8)&0xff0000 | sum<<24
			if stored != sum && stored != swapped {
				return nil, ferr("fletcher32 checksum mismatch (corrupt data)")
			}
			b = b[:n]
		default:
			return nil, ferr("%s", unsupportedFilter(fl))
		}
	}
	if len(b) != want {
		return nil, ferr("decoded chunk has %d bytes, want %d", len(b), want)
	}
	return b, nil
}

func unsupportedFilter(fl filter) string {
	name := fl.name
	if name == "" {
		name = knownFilters[fl.id]
	}
	if name == "" {
		name = "unregistered"
	}
	return fmt.Sprintf("compression filter %d (%s) is not supported (only deflate, shuffle and fletcher32)", fl.id, name)
}

var knownFilters = map[uint16]string{4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd"}

func unshuffle(b []byte, size int) []byte {
	if size <= 1 || len(b) < 2*size {
		return b
	}
	n := len(b) / size
	out := make([]byte, len(b))
	for j := 0; j < size; j++ {
		src := b[j*n : (j+1)*n]
		for i, v := range src {
			out[i*size+j] = v
		}
	}
	copy(out[n*size:], b[n*size:])
	return out
}

func fletcher32(data []byte) uint32 {
	var sum1, sum2 uint32
	n := len(data) / 2
	p := 0
	for n > 0 {
		t := min(n, 360)
		n -= t
		for ; t > 0; t-- {
			sum1 += uint32(data[p])<<8 | uint32(data[p+1])
			p += 2
			sum2 += sum1
		}
		sum1 = sum1&0xffff + sum1>>16
		sum2 = sum2&0xffff + sum2>>16
	}
	if len(data)%2 == 1 {
		sum1 += uint32(data[p]) << 8
		sum2 += sum1
		sum1 = sum1&0xffff + sum1>>16
		sum2 = sum2&0xffff + sum2>>16
	}
	sum1 = sum1&0xffff + sum1>>16
	sum2 = sum2&0xffff + sum2>>16
	return sum2<<16 | sum1
}

// chunkCache keeps decoded chunks up to a byte budget, least recently used out first.
type chunkCache struct {
	limit, used uint64
	ll          *list.List
	m           map[uint64]*list.Element
}

type cacheEntry struct {
	key  uint64
	data []byte
}

func (c *chunkCache) init(limit uint64) {
	c.limit, c.ll, c.m = limit, list.New(), map[uint64]*list.Element{}
}

func (c *chunkCache) get(key uint64) []byte {
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).data
	}
	return nil
}

func (c *chunkCache) put(key uint64, data []byte) {
	for c.used+uint64(len(data)) > c.limit && c.ll.Len() > 0 {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ce.key)
		c.used -= uint64(len(ce.data))
	}
	c.m[key] = c.ll.PushFront(&cacheEntry{key, data})
	c.used += uint64(len(data))
}
