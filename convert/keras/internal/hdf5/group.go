// Objects, groups and links (format spec §IV.A.2.g, .k, .r): old-style
// groups (symbol table, B-tree v1 and local heap), new-style groups (link
// messages in the header, or dense links in a fractal heap indexed by a
// B-tree v2). Only hard links are followed.
package hdf5

import (
	"sort"
	"strings"
)

// Object is a group, dataset or committed datatype.
type Object struct {
	f    *File
	Addr uint64
	hdr  *objectHeader
}

// Link is one named member of a group.
type Link struct {
	Name string
	Addr uint64 // undefAddr for soft and external links
	Soft bool
}

type stab struct{ btree, heap uint64 }

// Root returns the root group.
func (f *File) Root() (*Object, error) {
	return f.Object(f.root)
}

// Object returns the object whose header is at addr.
func (f *File) Object(addr uint64) (*Object, error) {
	h, err := f.header(addr)
	if err != nil {
		return nil, err
	}
	return &Object{f: f, Addr: addr, hdr: h}, nil
}

// IsDataset reports whether the object is a dataset (it has a layout).
func (o *Object) IsDataset() bool { return o.hdr.has(msgLayout) }

// IsGroup reports whether the object is a group.
func (o *Object) IsGroup() bool {
	if o.IsDataset() {
		return false
	}
	h := o.hdr
	return h.has(msgSymbolTable) || h.has(msgLink) || h.has(msgLinkInfo) || h.has(msgGroupInfo) ||
		(o.Addr == o.f.root && o.f.rootStab != nil)
}

// Links lists a group's members: sorted by name (old-style groups and
// dense links are indexed by name or hash; HDF5 gives no other order
// without a creation-order index).
func (o *Object) Links() ([]Link, error) {
	f := o.f
	f.mu.Lock()
	links, ok := f.links[o.Addr]
	f.mu.Unlock()
	if ok {
		return links, nil
	}
	links, err := o.readLinks()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if len(f.links) >= 4096 {
		clear(f.links)
	}
	f.links[o.Addr] = links
	f.mu.Unlock()
	return links, nil
}

func (o *Object) readLinks() ([]Link, error) {
	f := o.f
	var links []Link
	h := o.hdr
	if m := h.first(msgSymbolTable); m != nil || (o.Addr == f.root && f.rootStab != nil) {
		st := f.rootStab
		if m != nil {
			c := &rd{f: f, b: m.data, what: "symbol table message"}
			st = &stab{btree: c.addr(), heap: c.addr()}
			if c.err != nil {
				return nil, c.err
			}
		}
		heap, err := f.localHeap(st.heap)
		if err != nil {
			return nil, err
		}
		err = f.btreeV1(st.btree, 0, f.lenSize, func(_ []byte, snod uint64) error {
			return f.symbolNode(snod, heap, &links)
		})
		if err != nil {
			return nil, err
		}
	} else {
		for i := range h.msgs {
			if h.msgs[i].typ != msgLink {
				continue
			}
			l, err := f.parseLink(h.msgs[i].data)
			if err != nil {
				return nil, err
			}
			links = append(links, l)
		}
		if m := h.first(msgLinkInfo); m != nil {
			c := &rd{f: f, b: m.data, what: "link info message"}
			c.u8()
			flags := c.u8()
			if flags&1 != 0 {
				c.skip(8)
			}
			heapAddr, nameIdx := c.addr(), c.addr()
			if c.err != nil {
				return nil, c.err
			}
			if heapAddr != undefAddr && nameIdx != undefAddr {
				heap, err := f.fractalHeap(heapAddr)
				if err != nil {
					return nil, err
				}
				err = f.btreeV2(nameIdx, 5, func(r []byte) error {
					if len(r) < 5 {
						return bad("link name record of %d bytes", len(r))
					}
					obj, err := f.heapObject(heap, r[4:])
					if err != nil {
						return err
					}
					l, err := f.parseLink(obj)
					if err != nil {
						return err
					}
					links = append(links, l)
					if len(links) > 1<<22 {
						return bad("group with more than %d links", 1<<22)
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
			}
		}
	}
	sort.SliceStable(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	for i := 1; i < len(links); i++ {
		if links[i].Name == links[i-1].Name {
			return nil, bad("group at %#x has two links named %q", o.Addr, links[i].Name)
		}
	}
	return links, nil
}

func (f *File) symbolNode(addr uint64, heap []byte, links *[]Link) error {
	b, err := f.read(addr, 8, "symbol table node")
	if err != nil {
		return err
	}
	c := &rd{f: f, b: b, what: "symbol table node"}
	c.sig("SNOD")
	c.skip(2)
	n := int(c.u16())
	if c.err != nil {
		return c.err
	}
	entry := 2*f.offSize + 24
	b, err = f.read(addr, int64(8+n*entry), "symbol table node")
	if err != nil {
		return err
	}
	c = &rd{f: f, b: b, p: 8, what: "symbol table node"}
	for i := 0; i < n; i++ {
		nameOff := c.uvar(f.offSize)
		obj := c.addr()
		cache := c.u32()
		c.skip(20)
		if c.err != nil {
			return c.err
		}
		name, err := cstring(heap, nameOff, "symbol table")
		if err != nil {
			return err
		}
		l := Link{Name: name, Addr: obj}
		if cache == 2 {
			l.Soft, l.Addr = true, undefAddr
		}
		*links = append(*links, l)
		if len(*links) > 1<<22 {
			return bad("group with more than %d links", 1<<22)
		}
	}
	return nil
}

func (f *File) parseLink(b []byte) (Link, error) {
	c := &rd{f: f, b: b, what: "link message"}
	if v := c.u8(); c.err == nil && v != 1 {
		return Link{}, bad("link message version %d", v)
	}
	flags := c.u8()
	typ := uint8(0)
	if flags&0x08 != 0 {
		typ = c.u8()
	}
	if flags&0x04 != 0 {
		c.skip(8)
	}
	if flags&0x10 != 0 {
		c.skip(1)
	}
	n := int(c.uvar(1 << (flags & 3)))
	name := c.bytes(n)
	l := Link{Name: string(name), Addr: undefAddr}
	switch typ {
	case 0:
		l.Addr = c.addr()
	default:
		l.Soft = true
	}
	if c.err != nil {
		return Link{}, c.err
	}
	return l, nil
}

// Child returns the member called name, or nil when there is none.
func (o *Object) Child(name string) (*Object, error) {
	links, err := o.Links()
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(links), func(i int) bool { return links[i].Name >= name })
	if i == len(links) || links[i].Name != name {
		return nil, nil
	}
	l := links[i]
	if l.Soft || l.Addr == undefAddr {
		return nil, bad("%q is a soft or external link, which is not followed", name)
	}
	return o.f.Object(l.Addr)
}

// Lookup follows a '/'-separated path from o; nil when a member is missing.
func (o *Object) Lookup(path string) (*Object, error) {
	cur := o
	parts := strings.Split(path, "/")
	if len(parts) > 4*maxDepth {
		return nil, bad("path %q is too deep", path)
	}
	for _, p := range parts {
		if p == "" || p == "." {
			continue
		}
		if !cur.IsGroup() {
			return nil, nil
		}
		next, err := cur.Child(p)
		if err != nil || next == nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}
