// B-trees (format spec §III.A): version 1 nodes of group symbol tables (type
// 0) and of chunk indexes (type 1), and version 2 trees (link names, attribute
// names, chunk indexes). Each walk visits a node at most once and stops at
// maxDepth levels, so a corrupt or hostile tree cannot loop.
package hdf5

import "math/bits"

// btreeV1 calls leaf for every child address at level 0 with the key that
// precedes it. keyLen is the key size in bytes.
func (f *File) btreeV1(addr uint64, wantType uint8, keyLen int, leaf func(key []byte, child uint64) error) error {
	seen := map[uint64]bool{}
	var walk func(addr uint64, level int, depth int) error
	walk = func(addr uint64, level int, depth int) error {
		if depth > maxDepth {
			return bad("B-tree deeper than %d levels", maxDepth)
		}
		if seen[addr] {
			return bad("B-tree node at %#x is reached twice (corrupt file)", addr)
		}
		seen[addr] = true
		hdrLen := 8 + 2*f.offSize
		hb, err := f.read(addr, int64(hdrLen), "B-tree node")
		if err != nil {
			return err
		}
		c := &rd{f: f, b: hb, what: "B-tree node"}
		c.sig("TREE")
		typ := c.u8()
		lvl := int(c.u8())
		n := int(c.u16())
		if c.err != nil {
			return c.err
		}
		if typ != wantType {
			return bad("B-tree node at %#x has type %d, want %d", addr, typ, wantType)
		}
		if level >= 0 && lvl != level {
			return bad("B-tree node at %#x is at level %d, want %d", addr, lvl, level)
		}
		size := int64(hdrLen) + int64(n)*int64(keyLen+f.offSize) + int64(keyLen)
		b, err := f.read(addr, size, "B-tree node")
		if err != nil {
			return err
		}
		c = &rd{f: f, b: b, p: hdrLen, what: "B-tree node"}
		for i := 0; i < n; i++ {
			key := c.bytes(keyLen)
			child := c.addr()
			if c.err != nil {
				return c.err
			}
			if lvl == 0 {
				if err := leaf(key, child); err != nil {
					return err
				}
				continue
			}
			if err := walk(child, lvl-1, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(addr, -1, 0)
}

// btreeV2 calls rec for every record of the version 2 B-tree at addr.
func (f *File) btreeV2(addr uint64, wantType uint8, rec func(r []byte) error) error {
	hlen := int64(4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + f.offSize + 2 + f.lenSize + 4)
	b, err := f.read(addr, hlen, "B-tree v2 header")
	if err != nil {
		return err
	}
	if err := checksum(b, "B-tree v2 header"); err != nil {
		return err
	}
	c := &rd{f: f, b: b, what: "B-tree v2 header"}
	c.sig("BTHD")
	c.u8()
	typ := c.u8()
	nodeSize := int(c.u32())
	recSize := int(c.u16())
	depth := int(c.u16())
	c.skip(2)
	root := c.addr()
	rootN := int(c.u16())
	c.length()
	if c.err != nil {
		return c.err
	}
	if typ != wantType {
		return bad("B-tree v2 at %#x has type %d, want %d", addr, typ, wantType)
	}
	if nodeSize < 16 || nodeSize > maxMetaBlock || recSize < 1 || recSize > nodeSize || depth > maxDepth {
		return bad("B-tree v2 at %#x has an impossible geometry", addr)
	}
	if root == undefAddr || rootN == 0 {
		return nil
	}
	// Per-depth record capacities, as the HDF5 library computes them.
	encSize := func(v uint64) int { return (bits.Len64(v)-1)/8 + 1 }
	const prefix = 10
	type info struct {
		maxN        int
		cumMax      uint64
		cumMaxBytes int
	}
	ni := make([]info, depth+1)
	ni[0].maxN = (nodeSize - prefix) / recSize
	ni[0].cumMax = uint64(ni[0].maxN)
	if ni[0].maxN < 1 {
		return bad("B-tree v2 at %#x holds no records per node", addr)
	}
	maxNBytes := encSize(uint64(ni[0].maxN))
	ptrSize := func(d int) int {
		s := f.offSize + maxNBytes
		if d > 1 {
			s += ni[d-1].cumMaxBytes
		}
		return s
	}
	for d := 1; d <= depth; d++ {
		ps := ptrSize(d)
		ni[d].maxN = (nodeSize - (prefix + ps)) / (recSize + ps)
		if ni[d].maxN < 1 {
			return bad("B-tree v2 at %#x is too deep for its node size", addr)
		}
		ni[d].cumMax = (uint64(ni[d].maxN)+1)*ni[d-1].cumMax + uint64(ni[d].maxN)
		if ni[d].cumMax > 1<<56 {
			ni[d].cumMax = 1 << 56
		}
		ni[d].cumMaxBytes = encSize(ni[d].cumMax)
	}
	seen := map[uint64]bool{}
	var walk func(addr uint64, n, d int) error
	walk = func(addr uint64, n, d int) error {
		if seen[addr] {
			return bad("B-tree v2 node at %#x is reached twice (corrupt file)", addr)
		}
		seen[addr] = true
		if n > ni[d].maxN {
			return bad("B-tree v2 node at %#x claims %d records (at most %d fit)", addr, n, ni[d].maxN)
		}
		b, err := f.read(addr, int64(nodeSize), "B-tree v2 node")
		if err != nil {
			return err
		}
		c := &rd{f: f, b: b, what: "B-tree v2 node"}
		if d == 0 {
			c.sig("BTLF")
		} else {
			c.sig("BTIN")
		}
		c.skip(2)
		recs := c.bytes(n * recSize)
		if c.err != nil {
			return c.err
		}
		end := c.p
		type child struct {
			addr uint64
			n    int
		}
		var kids []child
		if d > 0 {
			for i := 0; i <= n; i++ {
				a := c.addr()
				cn := int(c.uvar(maxNBytes))
				if d > 1 {
					c.uvar(ni[d-1].cumMaxBytes)
				}
				kids = append(kids, child{a, cn})
			}
			end = c.p
		}
		if c.err != nil {
			return c.err
		}
		if end+4 > len(b) {
			return bad("B-tree v2 node at %#x overflows its node size", addr)
		}
		if err := checksum(b[:end+4], "B-tree v2 node"); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if d > 0 {
				if err := walk(kids[i].addr, kids[i].n, d-1); err != nil {
					return err
				}
			}
			if err := rec(recs[i*recSize : (i+1)*recSize]); err != nil {
				return err
			}
		}
		if d > 0 {
			return walk(kids[n].addr, kids[n].n, d-1)
		}
		return nil
	}
	return walk(root, rootN, depth)
}
