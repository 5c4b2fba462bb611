package convert

// Strided views and byte order. A strided view is a tensor whose elements sit
// in a backing region at base + Σ index[k]·stride[k] (in elements), streamed
// in C order. NumPy's Fortran-order arrays and PyTorch views (storage
// offsets, transposes, stride-0 expands, channels_last) are all such views.
//
// Memory is bounded whatever the tensor size: a 1 MiB read window that
// coalesces small nearby reads, at most an 8 MiB tile for transposed layouts,
// and a 256 KiB output buffer. Every element address is checked against the
// region before the first read: a view that reaches outside its storage is
// ErrInvalid, never a short or garbage read.

import (
	"io"
	"math"
	"math/bits"
	"sort"
	"unsafe"
)

// SizedReaderAt is a ReaderAt that knows its length, such as an
// *io.SectionReader over one storage, a *bytes.Reader or a Source.
type SizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

const (
	stridedWindow = 1 << 20   // bytes per coalesced read
	stridedTile   = 8 << 20   // bytes of a transpose tile
	stridedOut    = 256 << 10 // bytes of C-order output produced per refill
)

// Strided streams the view of r with the given shape and element strides,
// starting at element base, as C-order elements of itemsize bytes. Elements
// are copied as they are (no byte swapping). The valid addresses are the
// elements that fit in [0, r.Size()); a view reaching outside is ErrInvalid,
// reported by the first Read. Use OpenStrided to get that error up front.
func Strided(r SizedReaderAt, base int64, itemsize int, shape, strides []int64) io.ReadCloser {
	rc, err := OpenStrided(r, base, itemsize, shape, strides)
	if err != nil {
		return errReadCloser{err}
	}
	return rc
}

// OpenStrided is Strided that checks the view before returning.
func OpenStrided(r SizedReaderAt, base int64, itemsize int, shape, strides []int64) (io.ReadCloser, error) {
	if itemsize <= 0 {
		return nil, Invalidf("strided view: item size %d", itemsize)
	}
	if len(shape) != len(strides) {
		return nil, Invalidf("strided view: shape %v and strides %v differ in rank", shape, strides)
	}
	numel, err := CheckedNumel(shape, itemsize)
	if err != nil {
		return nil, err
	}
	if numel == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	isz := int64(itemsize)
	capacity := r.Size() / isz // elements that fit in the region
	lo, hi := base, base
	for k, d := range shape {
		if d <= 1 {
			continue
		}
		st := strides[k]
		if st == math.MinInt64 {
			return nil, Invalidf("strided view: stride %d out of range", st)
		}
		a := st
		if a < 0 {
			a = -a
		}
		h, ext := bits.Mul64(uint64(a), uint64(d-1))
		if h != 0 || ext > math.MaxInt64>>1 {
			return nil, Invalidf("strided view: shape %v with strides %v overflows", shape, strides)
		}
		if st > 0 {
			if hi > math.MaxInt64-int64(ext) {
				return nil, Invalidf("strided view: shape %v with strides %v overflows", shape, strides)
			}
			hi += int64(ext)
		} else {
			if lo < math.MinInt64+int64(ext) {
				return nil, Invalidf("strided view: shape %v with strides %v overflows", shape, strides)
			}
			lo -= int64(ext)
		}
	}
	if lo < 0 {
		return nil, Invalidf("strided view reaches element %d, before the start of its storage", lo)
	}
	if hi >= capacity {
		return nil, Invalidf("strided view reaches element %d, past the end of its storage (%d elements)", hi, capacity)
	}

	// Normalise: drop unit dims, merge dims that are contiguous with the next.
	var sh, st []int64
	for k, d := range shape {
		if d == 1 {
			continue
		}
		if n := len(sh); n > 0 && st[n-1] == strides[k]*d {
			sh[n-1] *= d
			st[n-1] = strides[k]
			continue
		}
		sh = append(sh, d)
		st = append(st, strides[k])
	}
	if len(sh) == 0 {
		sh, st = []int64{1}, []int64{1}
	}
	if len(sh) == 1 && st[0] == 1 {
		return Section(r, base*isz, numel*isz), nil
	}

	s := &strided{
		r:     r,
		isz:   isz,
		size:  r.Size(),
		numel: numel,
		out:   make([]byte, 0, max(stridedOut/isz, 1)*isz),
	}
	last := len(sh) - 1
	// A transposed layout (some outer dim has a smaller stride than the
	// innermost) is read in tiles along that dim: a block of its rows times
	// every index of the dims inside it. Take the smallest-stride dim whose
	// tile fits the budget; with none, walk runs along the innermost dim.
	p, rest := -1, int64(0)
	for k := 0; k < last; k++ {
		if st[k] == 0 || st[last] == 0 || abs64(st[k]) >= abs64(st[last]) {
			continue // an innermost broadcast is cheapest as runs of one repeated element
		}
		r := int64(1)
		for j := k + 1; j <= last; j++ {
			r *= sh[j]
		}
		if r*isz*2 > stridedTile {
			continue
		}
		if p < 0 || abs64(st[k]) < abs64(st[p]) {
			p, rest = k, r
		}
	}
	if p < 0 {
		s.initRuns(base, sh, st)
	} else {
		s.initTiles(base, sh, st, p, rest)
	}
	return s, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

type strided struct {
	r     io.ReaderAt
	isz   int64
	size  int64 // bytes in the region
	numel int64
	done  int64 // elements emitted so far

	out  []byte // produced, not yet read
	outp int

	win    []byte // read window over region bytes [winOff, winOff+len(win))
	winOff int64

	tiles bool

	// runs: the innermost dim is walked as runs of runLen elements, step runStep.
	runLen, runStep int64
	runPos          int64 // elements of the current run already emitted
	o               odometer

	// tiles: outer dims (odometer o), a block dim of blkLen elements with
	// step blkStep read blkN at a time, and rest dims walked in fetch order.
	blkLen, blkStep, blkN int64
	blk0                  int64 // first block index of the current tile
	restN                 int64
	fetch                 odometer // rest dims, largest stride outermost
	fetchDst              []int64  // C-order index strides of the rest dims, in fetch order
	tile                  []byte
	tileB                 int64 // block rows in the current tile
	tilePos               int64 // elements of the current tile emitted
	err                   error
}

// odometer walks dims in C order, tracking the element address.
type odometer struct {
	shape, stride, idx []int64
	base, addr         int64
}

func newOdometer(base int64, shape, stride []int64) odometer {
	return odometer{shape: shape, stride: stride, idx: make([]int64, len(shape)), base: base, addr: base}
}

func (o *odometer) reset() {
	clear(o.idx)
	o.addr = o.base
}

// next advances to the following index; it reports false after the last.
func (o *odometer) next() bool {
	for d := len(o.idx) - 1; d >= 0; d-- {
		o.idx[d]++
		o.addr += o.stride[d]
		if o.idx[d] < o.shape[d] {
			return true
		}
		o.addr -= o.stride[d] * o.shape[d]
		o.idx[d] = 0
	}
	return false
}

func (s *strided) initRuns(base int64, sh, st []int64) {
	last := len(sh) - 1
	s.runLen, s.runStep = sh[last], st[last]
	s.o = newOdometer(base, sh[:last], st[:last])
}

func (s *strided) initTiles(base int64, sh, st []int64, p int, rest int64) {
	s.tiles = true
	s.o = newOdometer(base, sh[:p], st[:p])
	s.blkLen, s.blkStep = sh[p], st[p]
	s.restN = rest
	s.blkN = min(max(stridedTile/(rest*s.isz), 1), s.blkLen)
	// Fetch the rest dims in source address order (largest |stride| outermost)
	// so that reads move forward through the region.
	dims := make([]int, 0, len(sh)-p-1)
	for k := p + 1; k < len(sh); k++ {
		dims = append(dims, k)
	}
	cstride := make(map[int]int64, len(dims))
	c := int64(1)
	for k := len(sh) - 1; k > p; k-- {
		cstride[k] = c
		c *= sh[k]
	}
	sort.SliceStable(dims, func(i, j int) bool { return abs64(st[dims[i]]) > abs64(st[dims[j]]) })
	fsh := make([]int64, len(dims))
	fst := make([]int64, len(dims))
	s.fetchDst = make([]int64, len(dims))
	for i, k := range dims {
		fsh[i], fst[i], s.fetchDst[i] = sh[k], st[k], cstride[k]
	}
	s.fetch = newOdometer(0, fsh, fst)
	s.tile = make([]byte, s.blkN*rest*s.isz)
	s.tilePos = -1 // no tile loaded
}

func (s *strided) Read(p []byte) (int, error) {
	if s.outp == len(s.out) {
		if s.err != nil {
			return 0, s.err
		}
		if s.done == s.numel {
			return 0, io.EOF
		}
		s.out, s.outp = s.out[:0], 0
		if s.tiles {
			s.err = s.produceTiles()
		} else {
			s.err = s.produceRuns()
		}
		if s.outp == len(s.out) && s.err != nil {
			return 0, s.err
		}
	}
	n := copy(p, s.out[s.outp:])
	s.outp += n
	return n, nil
}

func (s *strided) Close() error {
	s.win, s.tile, s.out = nil, nil, nil
	return nil
}

// produceRuns fills s.out with whole elements, run by run.
func (s *strided) produceRuns() error {
	room := int64(cap(s.out)) / s.isz
	gap := int64(0)
	if n := len(s.o.stride); n > 0 {
		gap = s.o.stride[n-1]
	}
	for room > 0 && s.done < s.numel {
		n := min(s.runLen-s.runPos, room)
		dst := s.out[len(s.out) : int64(len(s.out))+n*s.isz]
		if err := s.gather(dst, s.o.addr+s.runPos*s.runStep, n, s.runStep, gap); err != nil {
			return err
		}
		s.out = s.out[:int64(len(s.out))+n*s.isz]
		room -= n
		s.done += n
		s.runPos += n
		if s.runPos == s.runLen {
			s.runPos = 0
			s.o.next()
		}
	}
	return nil
}

// produceTiles fills s.out from the current tile, loading the next when it is spent.
func (s *strided) produceTiles() error {
	isz := s.isz
	for int64(len(s.out)) < int64(cap(s.out)) && s.done < s.numel {
		if s.tilePos < 0 || s.tilePos == s.tileB*s.restN {
			if s.tilePos >= 0 {
				s.blk0 += s.tileB
				if s.blk0 == s.blkLen {
					s.blk0 = 0
					s.o.next()
				}
			}
			if err := s.loadTile(); err != nil {
				return err
			}
		}
		// Emit tile elements in C order: block row b, then rest index r,
		// stored at tile[(r*tileB+b)*isz].
		n := min(s.tileB*s.restN-s.tilePos, (int64(cap(s.out))-int64(len(s.out)))/isz)
		o := s.out[len(s.out) : int64(len(s.out))+n*isz]
		b, r := s.tilePos/s.restN, s.tilePos%s.restN
		switch isz {
		case 1:
			transposeOut(o, s.tile, b, r, s.restN, s.tileB)
		case 2:
			transposeOut(asWords[uint16](o), asWords[uint16](s.tile), b, r, s.restN, s.tileB)
		case 4:
			transposeOut(asWords[uint32](o), asWords[uint32](s.tile), b, r, s.restN, s.tileB)
		case 8:
			transposeOut(asWords[uint64](o), asWords[uint64](s.tile), b, r, s.restN, s.tileB)
		default:
			for i := int64(0); i < n*isz; i += isz {
				src := (r*s.tileB + b) * isz
				copy(o[i:i+isz], s.tile[src:src+isz])
				if r++; r == s.restN {
					r, b = 0, b+1
				}
			}
		}
		s.out = s.out[:int64(len(s.out))+n*isz]
		s.tilePos += n
		s.done += n
	}
	return nil
}

// transposeOut fills out with tile elements in C order from block row b,
// rest index r: element (b, r) sits at tile[r*tb+b].
func transposeOut[T any](out, tile []T, b, r, restN, tb int64) {
	for i := range out {
		out[i] = tile[r*tb+b]
		if r++; r == restN {
			r, b = 0, b+1
		}
	}
}

// asWords views b as elements of T (b's length is a multiple of T's size).
func asWords[T uint16 | uint32 | uint64](b []byte) []T {
	var z T
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}

// loadTile reads block rows [blk0, blk0+tileB) of every rest index.
func (s *strided) loadTile() error {
	s.tileB = min(s.blkN, s.blkLen-s.blk0)
	s.tilePos = 0
	start := s.o.addr + s.blk0*s.blkStep
	s.fetch.base = start
	s.fetch.reset()
	gap := int64(0)
	if n := len(s.fetch.stride); n > 0 {
		gap = s.fetch.stride[n-1]
	}
	row := s.tileB * s.isz
	for {
		dst := int64(0)
		for i, x := range s.fetch.idx {
			dst += x * s.fetchDst[i]
		}
		off := dst * row
		if err := s.gather(s.tile[off:off+row], s.fetch.addr, s.tileB, s.blkStep, gap); err != nil {
			return err
		}
		if !s.fetch.next() {
			return nil
		}
	}
}

// gather copies n elements starting at element addr, step elements apart,
// into dst. gap is the distance in elements to the next gather, used to
// decide whether a read window pays off.
func (s *strided) gather(dst []byte, addr, n, step, gap int64) error {
	isz := s.isz
	if step == 1 || n == 1 {
		off, want := addr*isz, n*isz
		if b := s.window(off, want, gap*isz); b != nil {
			copy(dst, b)
			return nil
		}
		return s.readAt(dst, off)
	}
	if step == 0 {
		b := s.window(addr*isz, isz, gap*isz)
		if b == nil {
			if err := s.readAt(dst[:isz], addr*isz); err != nil {
				return err
			}
			b = dst[:isz]
		} else {
			copy(dst[:isz], b)
		}
		for i := isz; i < n*isz; i += isz {
			copy(dst[i:i+isz], b)
		}
		return nil
	}
	for i := int64(0); i < n; i++ {
		off := (addr + i*step) * isz
		b := s.window(off, isz, step*isz)
		if b == nil {
			if err := s.readAt(dst[i*isz:(i+1)*isz], off); err != nil {
				return err
			}
			continue
		}
		copy(dst[i*isz:(i+1)*isz], b)
	}
	return nil
}

// window returns region bytes [off, off+n) from the read window, refilling
// it when that pays: the request is small and the next one (gap bytes away)
// is likely to land in the same window. It returns nil when the caller
// should read directly.
func (s *strided) window(off, n, gap int64) []byte {
	if off >= s.winOff && off+n <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+n]
	}
	g := abs64(gap)
	if n > stridedWindow/4 || g > stridedWindow/8 || (g > 8*n && g > 4096) {
		return nil
	}
	start := off
	if gap < 0 { // walking backwards: end the window at this request
		start = max(0, off+n-stridedWindow)
	}
	l := min(int64(stridedWindow), s.size-start)
	if s.win == nil {
		s.win = make([]byte, stridedWindow)
	}
	s.win = s.win[:l]
	if err := s.readAt(s.win, start); err != nil {
		s.win = s.win[:0]
		return nil // the caller's direct read reports the error
	}
	s.winOff = start
	return s.win[off-start : off-start+n]
}

// readAt fills p from region offset off; a short region is ErrInvalid, any
// other read error (network, disk) is passed on as it is.
func (s *strided) readAt(p []byte, off int64) error {
	n, err := s.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return Invalidf("data ends at byte %d, %d bytes short of the tensor", off+int64(n), int64(len(p)-n))
	}
	return err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type errReadCloser struct{ err error }

func (e errReadCloser) Read([]byte) (int, error) { return 0, e.err }
func (e errReadCloser) Close() error             { return nil }

// ByteSwapped reverses the bytes of each itemsize-byte element of rc: a
// big-endian stream in, little-endian out. A stream that ends inside an
// element is ErrInvalid.
func ByteSwapped(rc io.ReadCloser, itemsize int) io.ReadCloser {
	if itemsize <= 1 {
		return rc
	}
	return &swapper{rc: rc, isz: itemsize, buf: make([]byte, (64<<10)/itemsize*itemsize+itemsize)}
}

type swapper struct {
	rc            io.ReadCloser
	isz           int
	buf           []byte
	off, end, len int // buf[off:end] swapped and ready, buf[end:len] a partial element
	err           error
}

func (s *swapper) Read(p []byte) (int, error) {
	if s.off == s.end {
		if s.err != nil {
			return 0, s.err
		}
		s.len = copy(s.buf, s.buf[s.end:s.len])
		s.off, s.end = 0, 0
		for s.len < s.isz && s.err == nil {
			var n int
			n, s.err = s.rc.Read(s.buf[s.len:])
			s.len += n
		}
		s.end = s.len - s.len%s.isz
		swapElements(s.buf[:s.end], s.isz)
		if s.end == 0 {
			if s.err == io.EOF && s.len > 0 {
				s.err = Invalidf("data ends inside a %d-byte element", s.isz)
			}
			return 0, s.err
		}
	}
	n := copy(p, s.buf[s.off:s.end])
	s.off += n
	return n, nil
}

func (s *swapper) Close() error { return s.rc.Close() }

func swapElements(b []byte, isz int) {
	switch isz {
	case 2:
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case 4:
		for i := 0; i+3 < len(b); i += 4 {
			b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
		}
	case 8:
		for i := 0; i+7 < len(b); i += 8 {
			b[i], b[i+1], b[i+2], b[i+3], b[i+4], b[i+5], b[i+6], b[i+7] = b[i+7], b[i+6], b[i+5], b[i+4], b[i+3], b[i+2], b[i+1], b[i]
		}
	default:
		for i := 0; i+isz <= len(b); i += isz {
			for j, k := i, i+isz-1; j < k; j, k = j+1, k-1 {
				b[j], b[k] = b[k], b[j]
			}
		}
	}
}
