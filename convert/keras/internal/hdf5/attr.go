// Attributes (format spec §IV.A.2.m, .v): attribute messages versions 1-3
// stored in the object header or densely in a fractal heap, and their text
// values (fixed-length and variable-length strings).
package hdf5

import (
	"bytes"
	"strings"
)

// Attribute is one attribute of an object.
type Attribute struct {
	Name  string
	Type  *Datatype
	Space *Dataspace
	data  []byte
	f     *File
}

// Attributes returns every attribute of o, compact and dense.
func (o *Object) Attributes() ([]*Attribute, error) {
	f := o.f
	var out []*Attribute
	for i := range o.hdr.msgs {
		m := &o.hdr.msgs[i]
		if m.typ != msgAttribute {
			continue
		}
		data, err := f.messageData(m)
		if err != nil {
			return nil, err
		}
		a, err := f.parseAttribute(data)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if m := o.hdr.first(msgAttrInfo); m != nil {
		c := &rd{f: f, b: m.data, what: "attribute info message"}
		c.u8()
		flags := c.u8()
		if flags&1 != 0 {
			c.skip(2)
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
			err = f.btreeV2(nameIdx, 8, func(r []byte) error {
				if len(r) < 9 {
					return bad("attribute name record of %d bytes", len(r))
				}
				if r[8]&1 != 0 {
					return bad("shared attributes are not supported")
				}
				obj, err := f.heapObject(heap, r[:8])
				if err != nil {
					return err
				}
				a, err := f.parseAttribute(obj)
				if err != nil {
					return err
				}
				out = append(out, a)
				if len(out) > 1<<20 {
					return bad("object with more than %d attributes", 1<<20)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Attr returns the attribute called name, or nil.
func (o *Object) Attr(name string) (*Attribute, error) {
	as, err := o.Attributes()
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.Name == name {
			return a, nil
		}
	}
	return nil, nil
}

func (f *File) parseAttribute(b []byte) (*Attribute, error) {
	c := &rd{f: f, b: b, what: "attribute message"}
	ver := c.u8()
	flags := c.u8()
	nameLen := int(c.u16())
	dtLen := int(c.u16())
	dsLen := int(c.u16())
	if ver == 3 {
		c.u8()
	} else if ver != 1 && ver != 2 {
		return nil, bad("attribute message version %d is not supported", ver)
	}
	pad := func(n int) int {
		if ver == 1 {
			return (n + 7) &^ 7
		}
		return n
	}
	name := c.bytes(nameLen)
	c.skip(pad(nameLen) - nameLen)
	dtb := c.bytes(dtLen)
	c.skip(pad(dtLen) - dtLen)
	dsb := c.bytes(dsLen)
	c.skip(pad(dsLen) - dsLen)
	if c.err != nil {
		return nil, c.err
	}
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	a := &Attribute{Name: string(name), f: f}
	if flags&1 != 0 { // shared datatype
		m := &message{typ: msgDatatype, flags: 2, data: dtb}
		d, err := f.messageData(m)
		if err != nil {
			return nil, err
		}
		dtb = d
	}
	if flags&2 != 0 {
		return nil, bad("attribute %q: shared dataspaces are not supported", a.Name)
	}
	dc := &rd{f: f, b: dtb, what: "attribute " + a.Name + " datatype"}
	a.Type = parseDatatype(dc, 0)
	if dc.err != nil {
		return nil, dc.err
	}
	sc := &rd{f: f, b: dsb, what: "attribute " + a.Name + " dataspace"}
	a.Space = parseDataspace(sc)
	if sc.err != nil {
		return nil, sc.err
	}
	n, ok := a.Space.Numel()
	need := n * uint64(a.Type.Size)
	if !ok || need/uint64(a.Type.Size) != n || need > uint64(c.left()) {
		return nil, bad("attribute %q: %v elements do not fit in its %d bytes of data", a.Name, a.Space.Dims, c.left())
	}
	a.data = c.bytes(int(need))
	if c.err != nil {
		return nil, bad("attribute %q: data truncated", a.Name)
	}
	return a, nil
}

// Len is the number of elements.
func (a *Attribute) Len() int {
	n, _ := a.Space.Numel()
	return int(n)
}

// IsText reports whether the attribute holds strings.
func (a *Attribute) IsText() bool {
	return a.Type.Class == ClassString || (a.Type.Class == ClassVlen && a.Type.VlenString)
}

// Strings returns a text attribute's values in order. An empty attribute of
// any type (h5py writes an empty list as a float64 array of shape (0,)) is an
// empty list.
func (a *Attribute) Strings() ([]string, error) {
	n := a.Len()
	if n == 0 {
		return []string{}, nil
	}
	switch {
	case a.Type.Class == ClassString:
		out := make([]string, 0, n)
		for i := 0; i < n; i++ {
			s := a.data[i*a.Type.Size : (i+1)*a.Type.Size]
			switch a.Type.StrPad {
			case 0: // NUL-terminated
				if j := bytes.IndexByte(s, 0); j >= 0 {
					s = s[:j]
				}
			case 1:
				s = bytes.TrimRight(s, "\x00")
			case 2:
				s = bytes.TrimRight(s, " ")
			}
			out = append(out, string(s))
		}
		return out, nil
	case a.Type.Class == ClassVlen && a.Type.VlenString:
		f := a.f
		elem := 4 + f.offSize + 4
		if a.Type.Size != elem {
			return nil, bad("attribute %q: variable-length element of %d bytes, want %d", a.Name, a.Type.Size, elem)
		}
		out := make([]string, 0, n)
		total := 0
		colls := map[uint64]map[uint32][]byte{}
		for i := 0; i < n; i++ {
			c := &rd{f: f, b: a.data[i*elem : (i+1)*elem], what: "attribute " + a.Name}
			length := int(c.u32())
			coll := c.addr()
			idx := c.u32()
			if c.err != nil {
				return nil, c.err
			}
			if length == 0 {
				out = append(out, "")
				continue
			}
			objs, ok := colls[coll]
			if !ok {
				var err error
				if objs, err = f.globalCollection(coll); err != nil {
					return nil, err
				}
				colls[coll] = objs
			}
			obj, ok := objs[idx]
			if !ok {
				return nil, bad("global heap object %d not found in the collection at %#x", idx, coll)
			}
			if length > len(obj) {
				return nil, bad("attribute %q: string of %d bytes in a heap object of %d", a.Name, length, len(obj))
			}
			total += length
			if total > maxMetaBlock {
				return nil, bad("attribute %q: over %d bytes of text", a.Name, maxMetaBlock)
			}
			out = append(out, string(obj[:length]))
		}
		return out, nil
	}
	return nil, bad("attribute %q is a %s, not text", a.Name, a.Type)
}

// Text returns a scalar or one-element text attribute as one string; longer
// lists are joined with newlines.
func (a *Attribute) Text() (string, error) {
	s, err := a.Strings()
	if err != nil {
		return "", err
	}
	return strings.Join(s, "\n"), nil
}
