// Heaps (format spec §III.D-G): the local heap of old-style group names, the
// global heap of variable-length data, and the fractal heap of dense links and
// attributes (managed and tiny objects; huge objects are refused).
package hdf5

import "math/bits"

// localHeap reads a local heap's data segment.
func (f *File) localHeap(addr uint64) ([]byte, error) {
	b, err := f.read(addr, int64(8+2*f.lenSize+f.offSize), "local heap")
	if err != nil {
		return nil, err
	}
	c := &rd{f: f, b: b, what: "local heap"}
	c.sig("HEAP")
	c.skip(4)
	size := c.length()
	c.length()
	data := c.addr()
	if c.err != nil {
		return nil, c.err
	}
	return f.read(data, int64(min(size, maxMetaBlock+1)), "local heap data")
}

// globalCollection reads the objects of the global heap collection at addr.
func (f *File) globalCollection(addr uint64) (map[uint32][]byte, error) {
	b, err := f.read(addr, int64(8+f.lenSize), "global heap")
	if err != nil {
		return nil, err
	}
	c := &rd{f: f, b: b, what: "global heap"}
	c.sig("GCOL")
	c.skip(4)
	size := c.length()
	if c.err != nil {
		return nil, c.err
	}
	if size < uint64(8+f.lenSize) || size > maxMetaBlock {
		return nil, bad("global heap collection at %#x of %d bytes", addr, size)
	}
	all, err := f.read(addr, int64(size), "global heap")
	if err != nil {
		return nil, err
	}
	objs := map[uint32][]byte{}
	c = &rd{f: f, b: all, p: 8 + f.lenSize, what: "global heap"}
	for c.left() >= 8+f.lenSize {
		id := c.u16()
		c.skip(6)
		n := c.length()
		if id == 0 { // free space runs to the end
			break
		}
		if n > uint64(c.left()) {
			return nil, bad("global heap object %d at %#x runs past its collection", id, addr)
		}
		objs[uint32(id)] = c.bytes(int(n))
		if pad := int(n % 8); pad != 0 {
			c.skip(min(8-pad, c.left()))
		}
		if c.err != nil {
			return nil, c.err
		}
	}
	return objs, nil
}

// fractalHeap is a parsed fractal heap header.
type fractalHeap struct {
	addr         uint64
	idLen        int
	flags        uint8
	maxManaged   uint32
	width        int
	startBlock   uint64
	maxDirect    uint64
	maxHeapBits  int
	rootAddr     uint64
	rootRows     int
	filtered     bool
	hugeBTree    uint64
	offBytes     int // heap offset bytes in IDs and block headers
	lenBytes     int // object length bytes in managed IDs
	maxDirectRow int // rows of direct blocks in an indirect block
	firstRowBits int // log2(startBlock * width)
}

func (f *File) fractalHeap(addr uint64) (*fractalHeap, error) {
	n := int64(4 + 1 + 2 + 2 + 1 + 4 + 12*f.lenSize + 3*f.offSize + 2 + 2 + 2 + 2 + 4)
	b, err := f.read(addr, n, "fractal heap")
	if err != nil {
		return nil, err
	}
	c := &rd{f: f, b: b, what: "fractal heap header"}
	c.sig("FRHP")
	if v := c.u8(); c.err == nil && v != 0 {
		return nil, bad("fractal heap version %d is not supported", v)
	}
	h := &fractalHeap{addr: addr}
	h.idLen = int(c.u16())
	filterLen := int(c.u16())
	h.flags = c.u8()
	h.maxManaged = c.u32()
	c.length() // next huge object ID
	h.hugeBTree = c.addr()
	c.length() // free space
	c.addr()   // free-space manager
	c.length() // managed space
	c.length() // allocated managed space
	c.length() // direct block allocation iterator
	c.length() // managed objects
	c.length() // huge objects size
	c.length() // huge objects
	c.length() // tiny objects size
	c.length() // tiny objects
	h.width = int(c.u16())
	h.startBlock = c.length()
	h.maxDirect = c.length()
	h.maxHeapBits = int(c.u16())
	c.u16() // starting rows of the root indirect block
	h.rootAddr = c.addr()
	h.rootRows = int(c.u16())
	if c.err != nil {
		return nil, c.err
	}
	h.filtered = filterLen > 0
	pow2 := func(v uint64) bool { return v != 0 && v&(v-1) == 0 }
	if h.width < 1 || h.width > 1<<14 || !pow2(uint64(h.width)) || !pow2(h.startBlock) || !pow2(h.maxDirect) ||
		h.maxDirect < h.startBlock || h.maxHeapBits < 1 || h.maxHeapBits > 64 || h.idLen < 2 || h.idLen > 64 {
		return nil, bad("fractal heap at %#x has an impossible geometry", addr)
	}
	whole := n + int64(filterLen)
	if h.filtered {
		whole += int64(f.lenSize) + 4
	}
	all, err := f.read(addr, whole, "fractal heap")
	if err != nil {
		return nil, err
	}
	if err := checksum(all, "fractal heap header"); err != nil {
		return nil, err
	}
	h.offBytes = (h.maxHeapBits + 7) / 8
	log2 := func(v uint64) int { return bits.Len64(v) - 1 }
	dirBytes := (log2(h.maxDirect) + 7) / 8
	manBytes := log2(uint64(max(h.maxManaged, 1)))/8 + 1
	h.lenBytes = min(dirBytes, manBytes)
	h.maxDirectRow = log2(h.maxDirect) - log2(h.startBlock) + 2
	h.firstRowBits = log2(h.startBlock) + log2(uint64(h.width))
	return h, nil
}

func (h *fractalHeap) rowBlockSize(r int) uint64 {
	if r == 0 {
		return h.startBlock
	}
	if r-1 >= 63 {
		return 0
	}
	return h.startBlock << (r - 1)
}

// object returns the object a heap ID names.
func (f *File) heapObject(h *fractalHeap, id []byte) ([]byte, error) {
	if len(id) < 1 {
		return nil, bad("empty fractal heap ID")
	}
	switch (id[0] >> 4) & 3 {
	case 0: // managed
		c := &rd{f: f, b: id, p: 1, what: "fractal heap ID"}
		off := c.uvar(h.offBytes)
		n := c.uvar(h.lenBytes)
		if c.err != nil {
			return nil, c.err
		}
		if h.filtered {
			return nil, bad("filtered fractal heaps are not supported")
		}
		return f.managedObject(h, off, n)
	case 2: // tiny: the data is in the ID
		if h.idLen <= 18 {
			n := int(id[0]&0x0f) + 1
			if 1+n > len(id) {
				return nil, bad("tiny heap object longer than its ID")
			}
			return id[1 : 1+n], nil
		}
		if len(id) < 2 {
			return nil, bad("tiny heap object ID truncated")
		}
		n := (int(id[0]&0x0f)<<8 | int(id[1])) + 1
		if 2+n > len(id) {
			return nil, bad("tiny heap object longer than its ID")
		}
		return id[2 : 2+n], nil
	case 1:
		return f.hugeObject(h, id)
	}
	return nil, bad("fractal heap ID of unknown type")
}

func (f *File) managedObject(h *fractalHeap, off, n uint64) ([]byte, error) {
	if n == 0 || n > uint64(h.maxManaged) && h.maxManaged != 0 || n > maxMetaBlock {
		return nil, bad("fractal heap object of %d bytes", n)
	}
	if h.rootRows == 0 {
		if off+n > h.startBlock || off+n < off {
			return nil, bad("fractal heap object at offset %d is outside the root block", off)
		}
		return f.read(h.rootAddr+off, int64(n), "fractal heap object")
	}
	iaddr, irows, ibase := h.rootAddr, h.rootRows, uint64(0)
	for depth := 0; depth < maxDepth; depth++ {
		nEntries := irows * h.width
		if irows > 64 || nEntries > 1<<20 {
			return nil, bad("fractal heap indirect block of %d rows", irows)
		}
		ndirect := min(irows, h.maxDirectRow)
		size := 4 + 1 + f.offSize + h.offBytes + nEntries*f.offSize + 4
		b, err := f.read(iaddr, int64(size), "fractal heap indirect block")
		if err != nil {
			return nil, err
		}
		c := &rd{f: f, b: b, what: "fractal heap indirect block"}
		c.sig("FHIB")
		c.skip(1 + f.offSize)
		c.uvar(h.offBytes)
		if c.err != nil {
			return nil, c.err
		}
		if err := checksum(b, "fractal heap indirect block"); err != nil {
			return nil, err
		}
		if off < ibase {
			return nil, bad("fractal heap offset %d is outside its block", off)
		}
		rel := off - ibase
		rowStart := uint64(0)
		found := false
		for r := 0; r < irows; r++ {
			bs := h.rowBlockSize(r)
			span := bs * uint64(h.width)
			if bs == 0 || span/uint64(h.width) != bs {
				return nil, bad("fractal heap row %d is too large", r)
			}
			if rel >= rowStart+span {
				rowStart += span
				continue
			}
			col := (rel - rowStart) / bs
			childBase := ibase + rowStart + col*bs
			c.p = 4 + 1 + f.offSize + h.offBytes + (r*h.width+int(col))*f.offSize
			child := c.addr()
			if c.err != nil {
				return nil, c.err
			}
			if child == undefAddr {
				return nil, bad("fractal heap object at offset %d lies in an unallocated block", off)
			}
			if r < ndirect {
				inBlock := off - childBase
				if inBlock+n > bs || inBlock+n < inBlock {
					return nil, bad("fractal heap object at offset %d runs past its block", off)
				}
				return f.read(child+inBlock, int64(n), "fractal heap object")
			}
			iaddr, ibase = child, childBase
			irows = bits.Len64(bs) - 1 - h.firstRowBits + 1
			if irows < 1 {
				return nil, bad("fractal heap indirect block geometry")
			}
			found = true
			break
		}
		if !found {
			return nil, bad("fractal heap offset %d is outside the heap", off)
		}
	}
	return nil, bad("fractal heap nests too deeply")
}

// hugeObject reads an object stored outside the heap's blocks: its address
// and length are in the ID, or in the heap's B-tree v2 under the ID's key.
func (f *File) hugeObject(h *fractalHeap, id []byte) ([]byte, error) {
	if h.filtered {
		return nil, bad("filtered fractal heaps are not supported")
	}
	c := &rd{f: f, b: id, p: 1, what: "fractal heap ID"}
	if h.idLen-1 >= f.offSize+f.lenSize {
		addr, n := c.addr(), c.length()
		if c.err != nil {
			return nil, c.err
		}
		return f.read(addr, int64(min(n, maxMetaBlock+1)), "fractal heap object")
	}
	key := c.uvar(min(h.idLen-1, 8))
	if c.err != nil {
		return nil, c.err
	}
	var addr, n uint64
	found := false
	err := f.btreeV2(h.hugeBTree, 1, func(r []byte) error {
		rc := &rd{f: f, b: r, what: "huge object record"}
		a, l, k := rc.addr(), rc.length(), rc.length()
		if rc.err != nil {
			return rc.err
		}
		if k == key && !found {
			addr, n, found = a, l, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, bad("huge fractal heap object %d not found", key)
	}
	return f.read(addr, int64(min(n, maxMetaBlock+1)), "fractal heap object")
}
