// Object headers (format spec §IV.A): version 1 (prefix and 8-byte aligned
// messages) and version 2 ("OHDR", checksummed), with continuation blocks,
// and shared messages that point at another object's header.
package hdf5

// Message types used here.
const (
	msgNil          = 0x00
	msgDataspace    = 0x01
	msgLinkInfo     = 0x02
	msgDatatype     = 0x03
	msgFillOld      = 0x04
	msgFill         = 0x05
	msgLink         = 0x06
	msgExternal     = 0x07
	msgLayout       = 0x08
	msgGroupInfo    = 0x0a
	msgFilter       = 0x0b
	msgAttribute    = 0x0c
	msgContinuation = 0x10
	msgSymbolTable  = 0x11
	msgAttrInfo     = 0x15
)

const maxContinuations = 1 << 16

type message struct {
	typ   uint16
	flags uint8
	data  []byte
}

type objectHeader struct {
	addr uint64
	msgs []message
}

func (h *objectHeader) first(typ uint16) *message {
	for i := range h.msgs {
		if h.msgs[i].typ == typ {
			return &h.msgs[i]
		}
	}
	return nil
}

func (h *objectHeader) has(typ uint16) bool { return h.first(typ) != nil }

// header reads (or returns the cached) object header at addr.
func (f *File) header(addr uint64) (*objectHeader, error) {
	f.mu.Lock()
	h, ok := f.headers[addr]
	f.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := f.readHeader(addr)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if len(f.headers) >= 4096 {
		clear(f.headers)
	}
	f.headers[addr] = h
	f.mu.Unlock()
	return h, nil
}

func (f *File) readHeader(addr uint64) (*objectHeader, error) {
	what := "object header"
	avail := f.avail(addr)
	if avail < 11 {
		return nil, bad("object header at %#x runs past the end of the file (truncated?)", addr)
	}
	pre, err := f.read(addr, min(16, avail), what)
	if err != nil {
		return nil, err
	}
	h := &objectHeader{addr: addr}
	type block struct {
		addr uint64
		n    uint64
	}
	var queue []block
	seen := map[uint64]bool{}
	if len(pre) >= 4 && string(pre[:4]) == "OHDR" {
		// version 2
		b, err := f.read(addr, min(avail, 64), what)
		if err != nil {
			return nil, err
		}
		c := &rd{f: f, b: b, what: what}
		c.sig("OHDR")
		if v := c.u8(); c.err == nil && v != 2 {
			return nil, bad("object header at %#x: version %d is not supported", addr, v)
		}
		flags := c.u8()
		if flags&0x20 != 0 {
			c.skip(16)
		}
		if flags&0x10 != 0 {
			c.skip(4)
		}
		size := c.uvar(1 << (flags & 3))
		if c.err != nil {
			return nil, c.err
		}
		start := c.p
		if size > maxMetaBlock {
			return nil, bad("object header at %#x: %d bytes is over the limit", addr, size)
		}
		all, err := f.read(addr, int64(start)+int64(size)+4, what)
		if err != nil {
			return nil, err
		}
		if err := checksum(all, what); err != nil {
			return nil, bad("object header at %#x: checksum mismatch (corrupt file)", addr)
		}
		cont, err := f.parseV2Messages(h, all[start:len(all)-4], flags&0x04 != 0)
		if err != nil {
			return nil, err
		}
		for _, bl := range cont {
			queue = append(queue, block(bl))
		}
		for len(queue) > 0 {
			bl := queue[0]
			queue = queue[1:]
			if seen[bl.addr] || len(seen) >= maxContinuations {
				return nil, bad("object header at %#x: continuation blocks loop or are too many", addr)
			}
			seen[bl.addr] = true
			if bl.n < 8 || bl.n > maxMetaBlock {
				return nil, bad("object header at %#x: continuation block of %d bytes", addr, bl.n)
			}
			b, err := f.read(bl.addr, int64(bl.n), "object header continuation")
			if err != nil {
				return nil, err
			}
			if string(b[:4]) != "OCHK" {
				return nil, bad("object header at %#x: continuation block at %#x has a bad signature", addr, bl.addr)
			}
			if err := checksum(b, "object header continuation"); err != nil {
				return nil, err
			}
			cont, err := f.parseV2Messages(h, b[4:len(b)-4], flags&0x04 != 0)
			if err != nil {
				return nil, err
			}
			for _, c := range cont {
				queue = append(queue, block(c))
			}
		}
		return h, nil
	}
	// version 1
	if len(pre) < 16 {
		return nil, bad("object header at %#x runs past the end of the file (truncated?)", addr)
	}
	if pre[0] != 1 {
		return nil, bad("object header at %#x: version %d is not supported (corrupt file or wrong address)", addr, pre[0])
	}
	c := &rd{f: f, b: pre, p: 2, what: what}
	nmsgs := int(c.u16())
	c.skip(4)
	size := uint64(c.u32())
	queue = append(queue, block{addr + 16, size})
	for len(queue) > 0 {
		bl := queue[0]
		queue = queue[1:]
		if seen[bl.addr] || len(seen) >= maxContinuations {
			return nil, bad("object header at %#x: continuation blocks loop or are too many", addr)
		}
		seen[bl.addr] = true
		if bl.n > maxMetaBlock {
			return nil, bad("object header at %#x: block of %d bytes is over the limit", addr, bl.n)
		}
		b, err := f.read(bl.addr, int64(bl.n), what)
		if err != nil {
			return nil, err
		}
		c := &rd{f: f, b: b, what: what}
		for c.left() >= 8 && len(h.msgs) < nmsgs {
			typ := c.u16()
			n := int(c.u16())
			flags := c.u8()
			c.skip(3)
			data := c.bytes(n)
			if c.err != nil {
				return nil, bad("object header at %#x: message runs past its block", addr)
			}
			h.msgs = append(h.msgs, message{typ: typ, flags: flags, data: data})
			if typ == msgContinuation {
				cc := &rd{f: f, b: data, what: "continuation message"}
				queue = append(queue, block{cc.addr(), cc.length()})
				if cc.err != nil {
					return nil, cc.err
				}
			}
		}
	}
	return h, nil
}

// parseV2Messages appends the messages of one v2 header block and returns its continuations.
func (f *File) parseV2Messages(h *objectHeader, b []byte, crtOrder bool) ([]struct{ addr, n uint64 }, error) {
	var cont []struct{ addr, n uint64 }
	c := &rd{f: f, b: b, what: "object header"}
	hdr := 4
	if crtOrder {
		hdr = 6
	}
	for c.left() >= hdr {
		typ := uint16(c.u8())
		n := int(c.u16())
		flags := c.u8()
		if crtOrder {
			c.skip(2)
		}
		data := c.bytes(n)
		if c.err != nil {
			return nil, bad("object header at %#x: message runs past its block", h.addr)
		}
		h.msgs = append(h.msgs, message{typ: typ, flags: flags, data: data})
		if typ == msgContinuation {
			cc := &rd{f: f, b: data, what: "continuation message"}
			a, l := cc.addr(), cc.length()
			if cc.err != nil {
				return nil, cc.err
			}
			cont = append(cont, struct{ addr, n uint64 }{a, l})
		}
	}
	return cont, nil
}

// messageData returns a message's own bytes, following a shared message
// (flag bit 1) to the object header that holds it.
func (f *File) messageData(m *message) ([]byte, error) {
	if m.flags&0x02 == 0 {
		return m.data, nil
	}
	c := &rd{f: f, b: m.data, what: "shared message"}
	ver := c.u8()
	typ := c.u8()
	var addr uint64
	switch ver {
	case 1:
		c.skip(6)
		addr = c.addr()
	case 2:
		addr = c.addr()
	case 3:
		if typ != 2 {
			return nil, bad("shared message in the file's shared message table is not supported")
		}
		addr = c.addr()
	default:
		return nil, bad("shared message version %d", ver)
	}
	if c.err != nil {
		return nil, c.err
	}
	h, err := f.header(addr)
	if err != nil {
		return nil, err
	}
	t := h.first(m.typ)
	if t == nil {
		return nil, bad("shared message: object at %#x holds no message of type %d", addr, m.typ)
	}
	if t.flags&0x02 != 0 {
		return nil, bad("shared message at %#x points at another shared message", addr)
	}
	return t.data, nil
}
