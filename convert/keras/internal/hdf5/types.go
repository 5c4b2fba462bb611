// Datatype, dataspace, data layout, filter pipeline and fill value messages
// (format spec §IV.A.2.b, .d, .e, .f, .i, .l).
package hdf5

import "fmt"

// Datatype classes.
const (
	ClassFixed    = 0
	ClassFloat    = 1
	ClassTime     = 2
	ClassString   = 3
	ClassBitfield = 4
	ClassOpaque   = 5
	ClassCompound = 6
	ClassRef      = 7
	ClassEnum     = 8
	ClassVlen     = 9
	ClassArray    = 10
)

var classNames = [...]string{"integer", "float", "time", "string", "bitfield", "opaque", "compound", "reference", "enum", "variable-length", "array"}

// Datatype is a parsed datatype message.
type Datatype struct {
	Class     int
	Size      int    // bytes per element
	BigEndian bool   // fixed, float, bitfield
	Signed    bool   // fixed
	BitOffset uint16 // fixed, float
	Precision uint16 // fixed, float
	// float layout
	SignPos, ExpPos, ExpSize, MantPos, MantSize int
	ExpBias                                     uint32
	// string: padding (0 NUL-terminated, 1 NUL-padded, 2 space-padded), charset (0 ASCII, 1 UTF-8)
	StrPad, Charset int
	// variable-length: VlenString (vs a sequence of Base)
	VlenString bool
	Base       *Datatype // vlen, enum
	// enum members
	EnumNames  []string
	EnumValues [][]byte
	// opaque tag
	Tag string
}

func (t *Datatype) String() string {
	name := fmt.Sprintf("class %d", t.Class)
	if t.Class < len(classNames) {
		name = classNames[t.Class]
	}
	if t.Class == ClassVlen && t.VlenString {
		name = "variable-length string"
	}
	return fmt.Sprintf("%s of %d bytes", name, t.Size)
}

// parseDatatype parses a datatype message at c's position.
func parseDatatype(c *rd, depth int) *Datatype {
	if depth > 16 {
		c.err = bad("datatype nested too deeply")
		return nil
	}
	cv := c.u8()
	bits := uint32(c.u8()) | uint32(c.u8())<<8 | uint32(c.u8())<<16
	t := &Datatype{Class: int(cv & 0x0f), Size: int(c.u32())}
	version := cv >> 4
	if c.err != nil {
		return nil
	}
	if t.Size <= 0 || t.Size > 1<<24 {
		c.err = bad("datatype of %d bytes", t.Size)
		return nil
	}
	switch t.Class {
	case ClassFixed, ClassBitfield:
		t.BigEndian = bits&1 != 0
		t.Signed = bits&8 != 0
		t.BitOffset, t.Precision = c.u16(), c.u16()
	case ClassFloat:
		t.BigEndian = bits&1 != 0
		if bits&0x40 != 0 {
			c.err = bad("VAX-order floats are not supported")
			return nil
		}
		t.SignPos = int(bits>>8) & 0xff
		t.BitOffset, t.Precision = c.u16(), c.u16()
		t.ExpPos, t.ExpSize = int(c.u8()), int(c.u8())
		t.MantPos, t.MantSize = int(c.u8()), int(c.u8())
		t.ExpBias = c.u32()
	case ClassTime:
		t.BigEndian = bits&1 != 0
		c.u16()
	case ClassString:
		t.StrPad, t.Charset = int(bits&0x0f), int(bits>>4)&0x0f
	case ClassOpaque:
		n := int(bits & 0xff)
		tag := c.bytes(n)
		if i := indexByte(tag, 0); i >= 0 {
			tag = tag[:i]
		}
		t.Tag = string(tag)
	case ClassEnum:
		t.Base = parseDatatype(c, depth+1)
		if c.err != nil {
			return nil
		}
		n := int(bits & 0xffff)
		if n > c.left() {
			c.err = bad("enum with %d members in %d bytes", n, c.left())
			return nil
		}
		for i := 0; i < n; i++ {
			start := c.p
			s := c.b[c.p:]
			j := indexByte(s, 0)
			if j < 0 {
				c.err = bad("enum member name unterminated")
				return nil
			}
			t.EnumNames = append(t.EnumNames, string(s[:j]))
			c.skip(j + 1)
			if version < 3 {
				for (c.p-start)%8 != 0 && c.err == nil {
					c.skip(1)
				}
			}
		}
		for i := 0; i < n; i++ {
			t.EnumValues = append(t.EnumValues, c.bytes(t.Base.Size))
		}
	case ClassVlen:
		t.VlenString = bits&0x0f == 1
		t.StrPad, t.Charset = int(bits>>4)&0x0f, int(bits>>8)&0x0f
		t.Base = parseDatatype(c, depth+1)
	case ClassCompound, ClassArray, ClassRef:
		// Not exported; the caller reports the class. Their members are not
		// needed, so the rest of the message is left unread.
		c.p = len(c.b)
	default:
		c.err = bad("datatype class %d is unknown", t.Class)
		return nil
	}
	if c.err != nil {
		return nil
	}
	return t
}

func indexByte(b []byte, x byte) int {
	for i, v := range b {
		if v == x {
			return i
		}
	}
	return -1
}

// Dataspace is a parsed dataspace message.
type Dataspace struct {
	Null    bool     // no elements at all
	Dims    []uint64 // nil for a scalar
	MaxDims []uint64 // nil when not given
}

// Numel is the element count (1 for a scalar, 0 for a null space). ok is
// false when the count overflows.
func (s *Dataspace) Numel() (n uint64, ok bool) {
	if s.Null {
		return 0, true
	}
	n = 1
	for _, d := range s.Dims {
		if d != 0 && n > (1<<62)/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

func parseDataspace(c *rd) *Dataspace {
	ver := c.u8()
	rank := int(c.u8())
	flags := c.u8()
	s := &Dataspace{}
	switch ver {
	case 1:
		c.skip(5)
	case 2:
		switch typ := c.u8(); typ {
		case 0:
			if rank != 0 {
				c.err = bad("scalar dataspace of rank %d", rank)
			}
		case 1:
		case 2:
			s.Null = true
		default:
			c.err = bad("dataspace type %d", typ)
		}
	default:
		c.err = bad("dataspace version %d is not supported", ver)
	}
	if c.err != nil {
		return nil
	}
	if rank > 32 {
		c.err = bad("dataspace of rank %d (HDF5 allows 32)", rank)
		return nil
	}
	if rank > 0 {
		s.Dims = make([]uint64, rank)
		for i := range s.Dims {
			s.Dims[i] = c.length()
		}
	}
	if flags&1 != 0 {
		s.MaxDims = make([]uint64, rank)
		for i := range s.MaxDims {
			s.MaxDims[i] = c.length()
		}
	}
	if c.err != nil {
		return nil
	}
	return s
}

// Layout classes.
const (
	layoutCompact    = 0
	layoutContiguous = 1
	layoutChunked    = 2
	layoutVirtual    = 3
)

// Chunk index types (layout version 4).
const (
	idxBTreeV1  = 0 // layout versions 1-3
	idxSingle   = 1
	idxImplicit = 2
	idxFixedArr = 3
	idxExtArr   = 4
	idxBTreeV2  = 5
)

type layout struct {
	class   int
	version int
	compact []byte
	addr    uint64 // contiguous data, or chunk index
	size    uint64 // contiguous bytes
	chunk   []uint64
	index   int
	// v4 chunk options
	noFilterEdge  bool   // do not filter partial edge chunks
	singleFilt    bool   // single chunk stored filtered
	singleSize    uint64 // its filtered size
	singleMask    uint32
	faPageBits    int
	elemSizeChunk uint32 // the chunk's trailing element-size dimension
}

func parseLayout(c *rd) *layout {
	l := &layout{version: int(c.u8())}
	switch l.version {
	case 1, 2:
		rank := int(c.u8())
		l.class = int(c.u8())
		c.skip(5)
		if l.class != layoutCompact {
			l.addr = c.addr()
		}
		dims := make([]uint64, 0, rank)
		for i := 0; i < rank && c.err == nil; i++ {
			dims = append(dims, uint64(c.u32()))
		}
		switch l.class {
		case layoutCompact:
			n := int(c.u32())
			l.compact = c.bytes(n)
		case layoutContiguous:
			l.size = undefAddr // computed from the dataspace
		case layoutChunked:
			if len(dims) < 1 {
				c.err = bad("chunked layout without dimensions")
				return nil
			}
			l.chunk, l.elemSizeChunk = dims[:len(dims)-1], uint32(dims[len(dims)-1])
		}
	case 3, 4:
		l.class = int(c.u8())
		switch l.class {
		case layoutCompact:
			n := int(c.u16())
			l.compact = c.bytes(n)
		case layoutContiguous:
			l.addr = c.addr()
			l.size = c.length()
		case layoutChunked:
			if l.version == 3 {
				rank := int(c.u8())
				l.addr = c.addr()
				dims := make([]uint64, 0, rank)
				for i := 0; i < rank && c.err == nil; i++ {
					dims = append(dims, uint64(c.u32()))
				}
				if len(dims) < 1 {
					c.err = bad("chunked layout without dimensions")
					return nil
				}
				l.chunk, l.elemSizeChunk = dims[:len(dims)-1], uint32(dims[len(dims)-1])
				l.index = idxBTreeV1
				break
			}
			flags := c.u8()
			rank := int(c.u8())
			enc := int(c.u8())
			if enc < 1 || enc > 8 {
				c.err = bad("chunk dimension size of %d bytes", enc)
				return nil
			}
			dims := make([]uint64, 0, rank)
			for i := 0; i < rank && c.err == nil; i++ {
				dims = append(dims, c.uvar(enc))
			}
			if len(dims) < 1 {
				c.err = bad("chunked layout without dimensions")
				return nil
			}
			l.chunk, l.elemSizeChunk = dims[:len(dims)-1], uint32(dims[len(dims)-1])
			l.noFilterEdge = flags&1 != 0
			l.index = int(c.u8())
			switch l.index {
			case idxSingle:
				if flags&2 != 0 {
					l.singleFilt = true
					l.singleSize = c.length()
					l.singleMask = c.u32()
				}
			case idxImplicit:
			case idxFixedArr:
				l.faPageBits = int(c.u8())
			case idxExtArr:
				c.skip(5)
			case idxBTreeV2:
				c.skip(6)
			default:
				c.err = bad("chunk index type %d is unknown", l.index)
				return nil
			}
			l.addr = c.addr()
		case layoutVirtual:
		default:
			c.err = bad("layout class %d is unknown", l.class)
			return nil
		}
	default:
		c.err = bad("data layout message version %d is not supported", l.version)
		return nil
	}
	if c.err != nil {
		return nil
	}
	return l
}

type filter struct {
	id    uint16
	flags uint16
	name  string
	cd    []uint32
}

func parseFilters(c *rd) []filter {
	ver := c.u8()
	n := int(c.u8())
	if ver == 1 {
		c.skip(6)
	} else if ver != 2 {
		c.err = bad("filter pipeline version %d is not supported", ver)
		return nil
	}
	if n > 32 {
		c.err = bad("filter pipeline of %d filters (HDF5 allows 32)", n)
		return nil
	}
	var fs []filter
	for i := 0; i < n && c.err == nil; i++ {
		var fl filter
		fl.id = c.u16()
		nameLen := 0
		if ver == 1 || fl.id >= 256 {
			nameLen = int(c.u16())
		}
		fl.flags = c.u16()
		ncd := int(c.u16())
		if nameLen > 0 {
			name := c.bytes(nameLen)
			if j := indexByte(name, 0); j >= 0 {
				name = name[:j]
			}
			fl.name = string(name)
			if ver == 1 && nameLen%8 != 0 {
				c.skip(8 - nameLen%8)
			}
		}
		if ncd > c.left()/4+1 {
			c.err = bad("filter with %d parameters in %d bytes", ncd, c.left())
			return nil
		}
		for j := 0; j < ncd; j++ {
			fl.cd = append(fl.cd, c.u32())
		}
		if ver == 1 && ncd%2 == 1 {
			c.skip(4)
		}
		fs = append(fs, fl)
	}
	if c.err != nil {
		return nil
	}
	return fs
}

// parseFill returns the fill value bytes a message defines, or nil.
func parseFill(c *rd, typ uint16) []byte {
	if typ == msgFillOld {
		n := int(c.u32())
		return c.bytes(n)
	}
	ver := c.u8()
	switch ver {
	case 1, 2:
		c.skip(2)
		defined := c.u8()
		if ver == 1 || defined != 0 {
			n := int(c.u32())
			if n == 0 {
				return nil
			}
			return c.bytes(n)
		}
	case 3:
		flags := c.u8()
		if flags&0x20 != 0 {
			n := int(c.u32())
			return c.bytes(n)
		}
	}
	return nil
}
