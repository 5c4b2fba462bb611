// Package hdf5 is a small read-only reader for the parts of HDF5 that Keras
// checkpoints use, written from the HDF5 File Format Specification 3.0
// (https://support.hdfgroup.org/documentation/hdf5/latest/_f_m_t3.html).
//
// Why by hand: github.com/scigolib/hdf5 v0.14.1, the pure-Go library we
// measured, loads the whole group tree at Open and never returns on a hard-link
// cycle (a valid file that h5py writes in three lines with libver="latest"),
// which no recover() can stop; it also drops densely stored attributes without
// an error, has no float16 read path, returns every value as float64 (int64
// above 2^53 is not exact), reads only B-tree v1 chunk indexes and opens files
// by name only. This reader works over an io.ReaderAt (no temp file for a local
// or remote object), parses lazily, and bounds every structure it follows.
//
// Supported: superblock versions 0-3 (with a user block); object header
// versions 1 and 2 with continuation blocks and checksums; old-style (symbol
// table) and new-style (compact and dense) groups; compact and dense
// attributes; fixed-length and variable-length strings; fixed-point, float,
// enum, opaque, string and variable-length datatypes; compact, contiguous and
// chunked layouts with B-tree v1, single-chunk, implicit, fixed-array,
// extensible-array and B-tree v2 chunk indexes; the deflate, shuffle and
// fletcher32 filters. Anything else (virtual datasets, external storage,
// shared message tables, filtered fractal heaps, other filters such as szip,
// LZF or Blosc) is a clear error.
//
// Limits: every structure must lie inside the file; every record read is
// bounds-checked; object headers, B-tree nodes, heap blocks and continuation
// blocks are each followed at most once per walk (cycles and DAG blow-ups end);
// B-tree and heap depths are capped; metadata blocks are at most maxMetaBlock
// bytes; a decoded chunk is at most MaxChunkBytes and must inflate to exactly
// its declared size. All errors about the file's bytes wrap convert.ErrInvalid;
// I/O errors of the underlying reader are passed on unchanged.
package hdf5

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"ckpt2csv/convert"
)

// Magic is the HDF5 format signature.
const Magic = "\x89HDF\r\n\x1a\n"

const (
	maxMetaBlock  = 64 << 20 // one object header chunk, B-tree node, heap block or attribute
	maxDepth      = 64       // B-tree levels, fractal heap indirection, path elements
	undefAddr     = ^uint64(0)
	MaxChunkBytes = 1 << 30 // one decoded chunk in memory
)

// bad formats an error about the file's bytes (wrapping convert.ErrInvalid).
func bad(format string, a ...any) error {
	return convert.Invalidf("HDF5: "+format, a...)
}

// File is an open HDF5 file.
type File struct {
	r       io.ReaderAt
	size    int64 // bytes in r
	base    int64 // absolute offset of the superblock: addresses are relative to it
	offSize int   // bytes in an address
	lenSize int   // bytes in a length
	sbVer   int
	root    uint64 // root group object header address
	// rootStab is the root's symbol table from the v0/v1 superblock's cache,
	// used when the root's object header carries none.
	rootStab *stab

	cache pageCache

	mu      sync.Mutex
	headers map[uint64]*objectHeader
	links   map[uint64][]Link
}

// FindSuperblock returns the offset of the HDF5 signature: 0, or a power of two
// from 512 (after a user block), searching at most limit bytes.
func FindSuperblock(r io.ReaderAt, size, limit int64) (int64, error) {
	buf := make([]byte, 8)
	for off := int64(0); off+8 <= size && off <= limit; {
		n, err := r.ReadAt(buf, off)
		if n < 8 {
			if err != nil && err != io.EOF {
				return 0, err
			}
			break
		}
		if string(buf) == Magic {
			return off, nil
		}
		if off == 0 {
			off = 512
		} else {
			off *= 2
		}
	}
	return 0, bad("no HDF5 signature (not an HDF5 file)")
}

// Open reads the superblock of the HDF5 file in r (size bytes).
func Open(r io.ReaderAt, size int64) (*File, error) {
	base, err := FindSuperblock(r, size, size)
	if err != nil {
		return nil, err
	}
	f := &File{r: r, size: size, base: base, headers: map[uint64]*objectHeader{}, links: map[uint64][]Link{}}
	f.cache.init(r, size)
	head, err := f.readAbs(base, min(size-base, 256))
	if err != nil {
		return nil, err
	}
	if len(head) < 9 {
		return nil, bad("superblock truncated")
	}
	f.sbVer = int(head[8])
	switch f.sbVer {
	case 0, 1:
		if len(head) < 24 {
			return nil, bad("superblock truncated")
		}
		f.offSize, f.lenSize = int(head[13]), int(head[14])
		if err := f.checkSizes(); err != nil {
			return nil, err
		}
		p := 24
		if f.sbVer == 1 {
			p += 4
		}
		c := &rd{f: f, b: head, p: p, what: "superblock"}
		c.addr() // base address: the signature's position is what counts
		c.addr() // free-space info / global free-space index
		c.addr() // end of file
		c.addr() // driver information block
		// root group symbol table entry
		c.addr() // link name offset
		f.root = c.addr()
		cacheType := c.u32()
		c.skip(4)
		if cacheType == 1 {
			f.rootStab = &stab{btree: c.addr(), heap: c.addr()}
		}
		if c.err != nil {
			return nil, c.err
		}
	case 2, 3:
		if len(head) < 12 {
			return nil, bad("superblock truncated")
		}
		f.offSize, f.lenSize = int(head[9]), int(head[10])
		if err := f.checkSizes(); err != nil {
			return nil, err
		}
		c := &rd{f: f, b: head, p: 12, what: "superblock"}
		c.addr() // base address
		c.addr() // superblock extension
		c.addr() // end of file
		f.root = c.addr()
		end := c.p
		if c.err != nil {
			return nil, c.err
		}
		if sum := c.u32(); c.err == nil && sum != lookup3(head[:end]) {
			return nil, bad("superblock checksum mismatch (corrupt file)")
		}
		if c.err != nil {
			return nil, c.err
		}
	default:
		return nil, bad("superblock version %d is not supported", f.sbVer)
	}
	if f.root == undefAddr || !f.inFile(f.root, 1) {
		return nil, bad("root group address %#x is outside the file (%d bytes; truncated?)", f.root, size)
	}
	return f, nil
}

func (f *File) checkSizes() error {
	ok := func(n int) bool { return n == 2 || n == 4 || n == 8 }
	if !ok(f.offSize) || !ok(f.lenSize) {
		return bad("superblock declares %d-byte addresses and %d-byte lengths", f.offSize, f.lenSize)
	}
	return nil
}

// inFile reports whether the n bytes at relative address addr lie in the file.
func (f *File) inFile(addr uint64, n int64) bool {
	if addr == undefAddr || n < 0 || addr > uint64(f.size) {
		return false
	}
	abs := f.base + int64(addr)
	return abs >= f.base && abs <= f.size && n <= f.size-abs
}

// read returns a copy of the n bytes at relative address addr (through the page cache).
func (f *File) read(addr uint64, n int64, what string) ([]byte, error) {
	if n > maxMetaBlock {
		return nil, bad("%s at %#x: %d bytes is over the %d-byte limit for one structure", what, addr, n, maxMetaBlock)
	}
	if !f.inFile(addr, n) {
		if addr == undefAddr {
			return nil, bad("%s: undefined address", what)
		}
		return nil, bad("%s at %#x+%d runs past the end of the file (%d bytes; truncated?)", what, addr, n, f.size-f.base)
	}
	return f.readAbs(f.base+int64(addr), n)
}

func (f *File) readAbs(off, n int64) ([]byte, error) {
	return f.cache.read(off, n)
}

// ReadRaw reads n bytes at relative address addr straight from the file,
// bypassing the cache (bulk data).
func (f *File) readRaw(p []byte, addr uint64) error {
	if !f.inFile(addr, int64(len(p))) {
		return bad("data at %#x+%d runs past the end of the file (%d bytes; truncated?)", addr, len(p), f.size-f.base)
	}
	return readFull(f.r, p, f.base+int64(addr))
}

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return bad("file ends at byte %d, inside a structure that runs to %d (truncated?)", off+int64(n), off+int64(len(p)))
	}
	return fmt.Errorf("reading HDF5 bytes %d..%d: %w", off, off+int64(len(p)), err)
}

// pageCache keeps recently read metadata pages so that the many small reads
// of headers, heaps and B-tree nodes cost few reads of a remote source.
type pageCache struct {
	mu    sync.Mutex
	r     io.ReaderAt
	size  int64
	pages map[int64][]byte
	order []int64
}

const (
	pageSize  = 64 << 10
	pageCount = 64
)

func (c *pageCache) init(r io.ReaderAt, size int64) {
	c.r, c.size, c.pages = r, size, map[int64][]byte{}
}

func (c *pageCache) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > c.size || n > c.size-off {
		return nil, bad("structure at byte %d+%d runs past the end of the file (%d bytes; truncated?)", off, n, c.size)
	}
	out := make([]byte, n)
	if n > pageSize {
		return out, readFull(c.r, out, off)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for done := int64(0); done < n; {
		p := (off + done) / pageSize * pageSize
		page, err := c.page(p)
		if err != nil {
			return nil, err
		}
		k := copy(out[done:], page[off+done-p:])
		if k == 0 {
			return nil, bad("structure at byte %d+%d runs past the end of the file (%d bytes; truncated?)", off, n, c.size)
		}
		done += int64(k)
	}
	return out, nil
}

func (c *pageCache) page(p int64) ([]byte, error) {
	if b, ok := c.pages[p]; ok {
		return b, nil
	}
	b := make([]byte, min(pageSize, c.size-p))
	if err := readFull(c.r, b, p); err != nil {
		return nil, err
	}
	if len(c.order) >= pageCount {
		delete(c.pages, c.order[0])
		c.order = c.order[1:]
	}
	c.pages[p] = b
	c.order = append(c.order, p)
	return b, nil
}

// rd is a bounds-checked cursor over one structure's bytes. The first
// overrun sets err, and every later read returns zero.
type rd struct {
	f    *File
	b    []byte
	p    int
	err  error
	what string
}

func (c *rd) need(n int) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || c.p+n > len(c.b) || c.p+n < c.p {
		c.err = bad("%s: record truncated or malformed (needs %d bytes at %d of %d)", c.what, n, c.p, len(c.b))
		return false
	}
	return true
}

func (c *rd) u8() uint8 {
	if !c.need(1) {
		return 0
	}
	c.p++
	return c.b[c.p-1]
}

func (c *rd) u16() uint16 { return uint16(c.uvar(2)) }
func (c *rd) u32() uint32 { return uint32(c.uvar(4)) }
func (c *rd) u64() uint64 { return c.uvar(8) }

// uvar reads an n-byte little-endian unsigned integer (n <= 8).
func (c *rd) uvar(n int) uint64 {
	if n > 8 {
		c.err = bad("%s: %d-byte integer field", c.what, n)
		return 0
	}
	if !c.need(n) {
		return 0
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(c.b[c.p+i])
	}
	c.p += n
	return v
}

// addr reads an address; all ones is undefAddr.
func (c *rd) addr() uint64 {
	n := c.f.offSize
	v := c.uvar(n)
	if n < 8 && v == 1<<(8*n)-1 {
		return undefAddr
	}
	return v
}

func (c *rd) length() uint64 { return c.uvar(c.f.lenSize) }

func (c *rd) bytes(n int) []byte {
	if !c.need(n) {
		return nil
	}
	c.p += n
	return c.b[c.p-n : c.p]
}

func (c *rd) skip(n int) {
	if c.need(n) {
		c.p += n
	}
}

func (c *rd) left() int { return len(c.b) - c.p }

// sig checks a 4-byte signature.
func (c *rd) sig(want string) {
	if got := c.bytes(4); c.err == nil && string(got) != want {
		c.err = bad("%s: bad signature %q, want %q (corrupt file or wrong address)", c.what, got, want)
	}
}

// cstring reads a NUL-terminated string from b at off.
func cstring(b []byte, off uint64, what string) (string, error) {
	if off >= uint64(len(b)) {
		return "", bad("%s: name offset %d is outside its heap (%d bytes)", what, off, len(b))
	}
	s := b[off:]
	i := bytes.IndexByte(s, 0)
	if i < 0 {
		return "", bad("%s: unterminated name", what)
	}
	return string(s[:i]), nil
}

// checksum verifies a trailing lookup3 checksum over b[:len(b)-4].
func checksum(b []byte, what string) error {
	if len(b) < 4 {
		return bad("%s: truncated", what)
	}
	n := len(b) - 4
	want := uint32(b[n]) | uint32(b[n+1])<<8 | uint32(b[n+2])<<16 | uint32(b[n+3])<<24
	if lookup3(b[:n]) != want {
		return bad("%s: checksum mismatch (corrupt file)", what)
	}
	return nil
}

// lookup3 is Bob Jenkins' hashlittle with initval 0, HDF5's metadata checksum.
func lookup3(k []byte) uint32 {
	rot := func(x uint32, n uint) uint32 { return x<<n | x>>(32-n) }
	length := len(k)
	a := uint32(0xdeadbeef) + uint32(length)
	b, c := a, a
	get := func(i int) uint32 {
		return uint32(k[i]) | uint32(k[i+1])<<8 | uint32(k[i+2])<<16 | uint32(k[i+3])<<24
	}
	for length > 12 {
		a += get(0)
		b += get(4)
		c += get(8)
		a -= c
		a ^= rot(c, 4)
		c += b
		b -= a
		b ^= rot(a, 6)
		a += c
		c -= b
		c ^= rot(b, 8)
		b += a
		a -= c
		a ^= rot(c, 16)
		c += b
		b -= a
		b ^= rot(a, 19)
		a += c
		c -= b
		c ^= rot(b, 4)
		b += a
		length -= 12
		k = k[12:]
	}
	if length == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k[:length])
	a += uint32(tail[0]) | uint32(tail[1])<<8 | uint32(tail[2])<<16 | uint32(tail[3])<<24
	b += uint32(tail[4]) | uint32(tail[5])<<8 | uint32(tail[6])<<16 | uint32(tail[7])<<24
	c += uint32(tail[8]) | uint32(tail[9])<<8 | uint32(tail[10])<<16 | uint32(tail[11])<<24
	c ^= b
	c -= rot(b, 14)
	a ^= c
	a -= rot(c, 11)
	b ^= a
	b -= rot(a, 25)
	c ^= b
	c -= rot(b, 16)
	a ^= c
	a -= rot(c, 4)
	b ^= a
	b -= rot(a, 14)
	c ^= b
	c -= rot(b, 24)
	return c
}

// avail is how many bytes of the file follow relative address addr (0 when outside).
func (f *File) avail(addr uint64) int64 {
	if addr == undefAddr || addr > uint64(f.size-f.base) {
		return 0
	}
	return f.size - f.base - int64(addr)
}

// Size is the file's size in bytes (after any user block).
func (f *File) Size() int64 { return f.size - f.base }
