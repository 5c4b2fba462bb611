// Extensible-array chunk indexes (format spec §VII.C, "Extensible Array"),
// which HDF5 1.10+ uses for chunked datasets with one unlimited dimension
// under libver="latest". An element is found the way H5EA__lookup_elmt
// does: in the index block, in a data block the index block points to, or
// through a super block; pages of large data blocks are checked against
// their super block's page bitmap.
package hdf5

import "math/bits"

type earray struct {
	f           *File
	elemSize    int
	maxBits     int
	idxElems    uint64
	dblkMin     uint64
	sblkMinPtrs uint64
	pageElems   uint64
	iblock      []byte // the index block, checksum verified
	nsblks      int    // super blocks in all
	iblkSblks   int    // super blocks whose data blocks the index block points to
	ndblkAddrs  int
	sblk        []struct{ ndblks, dblkElems, startIdx, startDblk uint64 }
	offBytes    int               // block offset field in data and super blocks
	blocks      map[uint64][]byte // verified data blocks, by address
}

func (cr *chunkReader) extensibleArrayIndex() error {
	f := cr.d.f
	addr := cr.d.lay.addr
	none := func([]uint64) (chunkEntry, bool, error) { return chunkEntry{}, false, nil }
	if addr == undefAddr {
		cr.lookup = none
		return nil
	}
	hl := int64(4 + 1 + 1 + 6 + 6*f.lenSize + f.offSize + 4)
	b, err := f.read(addr, hl, "extensible array header")
	if err != nil {
		return err
	}
	if err := checksum(b, "extensible array header"); err != nil {
		return err
	}
	c := &rd{f: f, b: b, what: "extensible array header"}
	c.sig("EAHD")
	c.u8()
	client := c.u8()
	ea := &earray{f: f, blocks: map[uint64][]byte{}}
	ea.elemSize = int(c.u8())
	ea.maxBits = int(c.u8())
	ea.idxElems = uint64(c.u8())
	ea.dblkMin = uint64(c.u8())
	ea.sblkMinPtrs = uint64(c.u8())
	pageBits := int(c.u8())
	for i := 0; i < 6; i++ {
		c.length()
	}
	iaddr := c.addr()
	if c.err != nil {
		return c.err
	}
	pow2 := func(v uint64) bool { return v != 0 && v&(v-1) == 0 }
	filtered := client == 1
	if (client != 0 && client != 1) || ea.elemSize < f.offSize || (filtered && ea.elemSize < f.offSize+5) || ea.elemSize > f.offSize+12 ||
		ea.maxBits < 1 || ea.maxBits > 64 || !pow2(ea.dblkMin) || !pow2(ea.sblkMinPtrs) || pageBits > 32 {
		return bad("extensible array chunk index has an impossible geometry")
	}
	ea.pageElems = 1 << pageBits
	log2 := func(v uint64) int { return bits.Len64(v) - 1 }
	ea.nsblks = 1 + ea.maxBits - log2(ea.dblkMin)
	if ea.nsblks < 1 || ea.nsblks > 64 {
		return bad("extensible array chunk index has an impossible geometry")
	}
	var start, startDblk uint64
	for u := 0; u < ea.nsblks; u++ {
		nd := uint64(1) << (u / 2)
		de := (uint64(1) << ((u + 1) / 2)) * ea.dblkMin
		ea.sblk = append(ea.sblk, struct{ ndblks, dblkElems, startIdx, startDblk uint64 }{nd, de, start, startDblk})
		start += nd * de
		startDblk += nd
	}
	ea.iblkSblks = 2 * log2(ea.sblkMinPtrs)
	ea.ndblkAddrs = 2 * int(ea.sblkMinPtrs-1)
	nsblkAddrs := ea.nsblks - ea.iblkSblks
	if nsblkAddrs < 0 || ea.iblkSblks > ea.nsblks {
		return bad("extensible array chunk index has an impossible geometry")
	}
	ea.offBytes = (ea.maxBits + 7) / 8
	if iaddr == undefAddr {
		cr.lookup = none
		return nil
	}
	il := int64(4+1+1+f.offSize) + int64(ea.idxElems)*int64(ea.elemSize) + int64(ea.ndblkAddrs+nsblkAddrs)*int64(f.offSize) + 4
	if ea.iblock, err = f.read(iaddr, il, "extensible array index block"); err != nil {
		return err
	}
	if string(ea.iblock[:4]) != "EAIB" {
		return bad("extensible array index block has a bad signature")
	}
	if err := checksum(ea.iblock, "extensible array index block"); err != nil {
		return err
	}
	// Chunks are numbered with the unlimited dimension first.
	unlim := -1
	for i, m := range cr.d.Space.MaxDims {
		if m == undefAddr {
			unlim = i
		}
	}
	mg := cr.maxGrid()
	order := make([]int, 0, len(mg))
	if unlim >= 0 {
		order = append(order, unlim)
	}
	for i := range mg {
		if i != unlim {
			order = append(order, i)
		}
	}
	sw := make([]uint64, len(mg))
	swg := make([]uint64, len(mg))
	for i, d := range order {
		swg[i] = mg[d]
	}
	cr.lookup = func(s []uint64) (chunkEntry, bool, error) {
		for i, d := range order {
			sw[i] = s[d]
		}
		var lin uint64
		for i, v := range sw {
			if i > 0 {
				lin *= swg[i]
			}
			lin += v
		}
		raw, ok, err := ea.element(lin)
		if err != nil || !ok {
			return chunkEntry{}, false, err
		}
		ec := &rd{f: f, b: raw, what: "extensible array element"}
		e := chunkEntry{addr: ec.addr(), size: cr.chunkBytes}
		if filtered {
			e.size = ec.uvar(ea.elemSize - f.offSize - 4)
			e.mask = ec.u32()
		}
		if ec.err != nil {
			return chunkEntry{}, false, ec.err
		}
		return e, e.addr != undefAddr, nil
	}
	return nil
}

// element returns the raw bytes of element idx, or ok=false when it was never stored.
func (ea *earray) element(idx uint64) (raw []byte, ok bool, err error) {
	f := ea.f
	es := uint64(ea.elemSize)
	prefix := uint64(4 + 1 + 1 + f.offSize)
	if idx < ea.idxElems {
		p := prefix + idx*es
		return ea.iblock[p : p+es], true, nil
	}
	rel := idx - ea.idxElems
	u := bits.Len64(rel/ea.dblkMin+1) - 1
	if u >= ea.nsblks {
		return nil, false, bad("chunk %d is past the extensible array's capacity", idx)
	}
	sb := ea.sblk[u]
	el := rel - sb.startIdx
	addrAt := func(b []byte, i int) uint64 {
		c := &rd{f: f, b: b, p: i, what: "extensible array"}
		return c.addr()
	}
	dblkPrefix := prefix + uint64(ea.offBytes) + 4
	var dblk uint64
	var pageInit func(page uint64) bool
	if u < ea.iblkSblks {
		di := sb.startDblk + el/sb.dblkElems
		if di >= uint64(ea.ndblkAddrs) {
			return nil, false, bad("extensible array data block %d is out of range", di)
		}
		dblk = addrAt(ea.iblock, int(prefix+ea.idxElems*es+di*uint64(f.offSize)))
		if sb.dblkElems > ea.pageElems {
			return nil, false, bad("paged data blocks in an extensible array index block are not supported")
		}
	} else {
		si := u - ea.iblkSblks
		sAddr := addrAt(ea.iblock, int(prefix+ea.idxElems*es+uint64(ea.ndblkAddrs+si)*uint64(f.offSize)))
		if sAddr == undefAddr {
			return nil, false, nil
		}
		npages := uint64(0)
		if sb.dblkElems > ea.pageElems {
			npages = sb.dblkElems / ea.pageElems
		}
		bitmap := sb.ndblks * ((npages + 7) / 8) // (H5EA__sblock_alloc sizes it per data block; bits are indexed across all)
		sl := int64(prefix) + int64(ea.offBytes) + int64(bitmap) + int64(sb.ndblks)*int64(f.offSize) + 4
		sbb, err := f.read(sAddr, sl, "extensible array super block")
		if err != nil {
			return nil, false, err
		}
		if string(sbb[:4]) != "EASB" {
			return nil, false, bad("extensible array super block has a bad signature")
		}
		if err := checksum(sbb, "extensible array super block"); err != nil {
			return nil, false, err
		}
		di := el / sb.dblkElems
		base := prefix + uint64(ea.offBytes)
		dblk = addrAt(sbb, int(base+bitmap+di*uint64(f.offSize)))
		if npages > 0 {
			bm := sbb[base : base+bitmap]
			pageInit = func(page uint64) bool {
				bit := di*npages + page
				return bm[bit/8]&(0x80>>(bit%8)) != 0
			}
		}
	}
	if dblk == undefAddr {
		return nil, false, nil
	}
	el %= sb.dblkElems
	if pageInit != nil {
		page := el / ea.pageElems
		if !pageInit(page) {
			return nil, false, nil
		}
		at := dblk + dblkPrefix + page*(ea.pageElems*es+4) + (el%ea.pageElems)*es
		raw, err := f.read(at, int64(es), "extensible array page")
		return raw, err == nil, err
	}
	b, ok := ea.blocks[dblk]
	if !ok {
		if b, err = f.read(dblk, int64(dblkPrefix+sb.dblkElems*es), "extensible array data block"); err != nil {
			return nil, false, err
		}
		if string(b[:4]) != "EADB" {
			return nil, false, bad("extensible array data block has a bad signature")
		}
		if err := checksum(b, "extensible array data block"); err != nil {
			return nil, false, err
		}
		if len(ea.blocks) >= 64 {
			clear(ea.blocks)
		}
		ea.blocks[dblk] = b
	}
	p := prefix + uint64(ea.offBytes) + el*es
	return b[p : p+es], true, nil
}
