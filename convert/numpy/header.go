package numpy

// The .npy header, per NEP 1 / numpy.lib.format: the magic "\x93NUMPY", a
// major and minor version byte, the header length (little-endian u16 for
// version 1, u32 for versions 2 and 3), then the header: a Python dict
// literal {'descr': ..., 'fortran_order': ..., 'shape': ...} padded with
// spaces and a newline (latin-1 in versions 1 and 2, UTF-8 in version 3).
//
// The dict literal is parsed by hand, strictly: numpy reads it with
// ast.literal_eval, so only literals (strings, integers, True/False/None,
// tuples, lists, dicts) are accepted, nested at most maxDepth deep, and the
// header is at most lim.MaxHeaderBytes. The keys must be exactly the three
// numpy writes, as numpy itself requires. A Python 2 long suffix (3L) is
// accepted, as numpy accepts it in old files.

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"ckpt2csv/convert"
)

const magic = "\x93NUMPY"

// maxDepth bounds nesting in the header literal.
const maxDepth = 32

// header is a parsed .npy header.
type header struct {
	Major, Minor byte
	Descr        string // the descr as written, for messages ("<f8", "[('a', '<i4')]")
	DType        convert.DType
	Skip         string // why the array is not exported ("" if it is)
	Object       bool   // an object array: its data is a pickle
	Swap         bool   // big-endian: values are byte-swapped while streaming
	Itemsize     int
	Fortran      bool
	Shape        []int64
	Numel        int64
	DataOffset   int64 // bytes from the start of the .npy to its data
}

// DataBytes is the size of the array's data.
func (h *header) DataBytes() int64 { return h.Numel * int64(h.Itemsize) }

// readHeader reads and parses the preamble and header from r, which is
// positioned at the start of a .npy of size bytes. It reads nothing past the
// header, and allocates nothing a header longer than the file asks for.
func readHeader(r io.Reader, size, maxHeader int64) (*header, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:10]); err != nil {
		return nil, shortRead(err, "the .npy preamble")
	}
	if string(pre[:6]) != magic {
		return nil, convert.Invalidf("not an .npy array: bad magic %q", pre[:6])
	}
	h := &header{Major: pre[6], Minor: pre[7]}
	var hlen int64
	switch h.Major {
	case 1:
		hlen = int64(binary.LittleEndian.Uint16(pre[8:10]))
		h.DataOffset = 10
	case 2, 3:
		if _, err := io.ReadFull(r, pre[10:12]); err != nil {
			return nil, shortRead(err, "the .npy preamble")
		}
		hlen = int64(binary.LittleEndian.Uint32(pre[8:12]))
		h.DataOffset = 12
	default:
		return nil, convert.Invalidf("npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", h.Major, h.Minor)
	}
	if hlen > maxHeader {
		return nil, convert.Invalidf("npy header of %d bytes is over the limit of %d", hlen, maxHeader)
	}
	h.DataOffset += hlen
	if h.DataOffset > size {
		return nil, convert.Invalidf("file ends inside the %d-byte npy header", hlen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, shortRead(err, fmt.Sprintf("the %d-byte npy header", hlen))
	}
	if err := h.parse(buf); err != nil {
		return nil, err
	}
	return h, nil
}

// shortRead turns an early end into ErrInvalid and passes other errors on.
func shortRead(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return convert.Invalidf("file ends inside %s", what)
	}
	return err
}

// parse interprets the header text.
func (h *header) parse(buf []byte) error {
	var text string
	if h.Major >= 3 {
		if !utf8.Valid(buf) {
			return convert.Invalidf("npy header is not valid UTF-8")
		}
		text = string(buf)
	} else { // latin-1
		var sb strings.Builder
		for _, c := range buf {
			sb.WriteRune(rune(c))
		}
		text = sb.String()
	}
	p := &litParser{s: text}
	v, err := p.value(0)
	if err != nil {
		return err
	}
	p.space()
	if p.i != len(p.s) {
		return convert.Invalidf("npy header: unexpected %q after the dict", clip(p.s[p.i:]))
	}
	if v.kind != kDict {
		return convert.Invalidf("npy header is not a dict")
	}
	var descr, fortran, shape *pyValue
	for i, k := range v.keys {
		switch k {
		case "descr":
			descr = &v.items[i]
		case "fortran_order":
			fortran = &v.items[i]
		case "shape":
			shape = &v.items[i]
		default:
			return convert.Invalidf("npy header has an unexpected key %q", k)
		}
	}
	if descr == nil || fortran == nil || shape == nil {
		return convert.Invalidf("npy header lacks one of 'descr', 'fortran_order', 'shape'")
	}
	if fortran.kind != kBool {
		return convert.Invalidf("npy header: 'fortran_order' is not True or False")
	}
	h.Fortran = fortran.b
	if shape.kind != kTuple {
		return convert.Invalidf("npy header: 'shape' is not a tuple")
	}
	h.Shape = make([]int64, len(shape.items))
	for i, d := range shape.items {
		if d.kind != kInt {
			return convert.Invalidf("npy header: 'shape' holds a non-integer")
		}
		h.Shape[i] = d.i
	}
	if err := h.dtype(descr); err != nil {
		return err
	}
	n, err := convert.CheckedNumel(h.Shape, max(h.Itemsize, 1))
	if err != nil {
		return err
	}
	h.Numel = n
	return nil
}

// dtype maps the descr to a dtype, or records why the array is skipped.
//
// Byte order: '<' little, '>' big (swapped while streaming), '|' not
// applicable. numpy writes '=' never (it writes the explicit order); were it
// to appear, it means the writer's native order, taken as little-endian,
// which every platform numpy ships for today is.
func (h *header) dtype(v *pyValue) error {
	switch v.kind {
	case kList:
		h.Descr = "[...]"
		h.Skip = "structured dtype (record fields) is not exported"
		return nil
	case kTuple:
		h.Descr = "(...)"
		h.Skip = "subarray dtype is not exported"
		return nil
	case kStr:
	default:
		return convert.Invalidf("npy header: 'descr' is not a string")
	}
	d := v.s
	h.Descr = d
	s := d
	order := byte('|')
	if s != "" && strings.IndexByte("<>|=", s[0]) >= 0 {
		order, s = s[0], s[1:]
	}
	if s == "" || !isLetter(s[0]) {
		return convert.Invalidf("npy header: malformed descr %q", clip(d))
	}
	kind, rest := s[0], s[1:]
	unit := ""
	if i := strings.IndexByte(rest, '['); i >= 0 { // datetime unit, "<M8[ns]"
		if !strings.HasSuffix(rest, "]") {
			return convert.Invalidf("npy header: malformed descr %q", clip(d))
		}
		rest, unit = rest[:i], rest[i:]
	}
	size := 0
	if rest != "" {
		n, err := strconv.Atoi(rest)
		if err != nil || n <= 0 || n > 1<<30 {
			return convert.Invalidf("npy header: malformed descr %q", clip(d))
		}
		size = n
	}
	_ = unit
	h.Itemsize = size
	h.Swap = order == '>' && size > 1
	var dt convert.DType
	switch kind {
	case 'f':
		dt = map[int]convert.DType{2: convert.Float16, 4: convert.Float32, 8: convert.Float64}[size]
		if dt == "" {
			h.Skip = fmt.Sprintf("float%d (long double) is not exported", size*8)
		}
	case 'i':
		dt = map[int]convert.DType{1: convert.Int8, 2: convert.Int16, 4: convert.Int32, 8: convert.Int64}[size]
	case 'u':
		dt = map[int]convert.DType{1: convert.Uint8, 2: convert.Uint16, 4: convert.Uint32, 8: convert.Uint64}[size]
	case 'b':
		if size == 1 {
			dt = convert.Bool
		}
	case 'c':
		h.Skip = fmt.Sprintf("complex%d is not exported", size*8)
	case 'O':
		h.Object = true
		h.Skip = "object array: its data is a Python pickle, which is not read"
	case 'S', 'a':
		h.Skip = "byte strings are not exported"
	case 'U':
		h.Skip = "unicode strings are not exported"
	case 'V':
		h.Skip = "void (raw bytes) dtype is not exported"
	case 'M':
		h.Skip = "datetime64 is not exported"
	case 'm':
		h.Skip = "timedelta64 is not exported"
	default:
		h.Skip = fmt.Sprintf("dtype %q is not exported", d)
	}
	if dt == "" && h.Skip == "" {
		h.Skip = fmt.Sprintf("dtype %q is not exported", d)
	}
	h.DType = dt
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// clip shortens text quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

type pyKind byte

const (
	kStr pyKind = iota + 1
	kInt
	kBool
	kNone
	kTuple
	kList
	kDict
)

// pyValue is a Python literal. Dict keys must be strings (all numpy writes).
type pyValue struct {
	kind  pyKind
	s     string
	i     int64
	b     bool
	items []pyValue // tuple, list elements; dict values
	keys  []string  // dict keys
}

type litParser struct {
	s string
	i int
}

func (p *litParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.i++
		default:
			return
		}
	}
}

func (p *litParser) errf(format string, a ...any) error {
	return convert.Invalidf("npy header: "+format+" at byte %d", append(a, p.i)...)
}

func (p *litParser) value(depth int) (pyValue, error) {
	if depth > maxDepth {
		return pyValue{}, p.errf("nesting too deep")
	}
	p.space()
	if p.i >= len(p.s) {
		return pyValue{}, p.errf("unexpected end")
	}
	c := p.s[p.i]
	switch {
	case c == '{':
		return p.dict(depth)
	case c == '(':
		return p.seq(depth, ')', kTuple)
	case c == '[':
		return p.seq(depth, ']', kList)
	case c == '\'' || c == '"':
		s, err := p.str()
		return pyValue{kind: kStr, s: s}, err
	case (c == 'u' || c == 'b' || c == 'U' || c == 'B') && p.i+1 < len(p.s) && (p.s[p.i+1] == '\'' || p.s[p.i+1] == '"'):
		p.i++
		s, err := p.str()
		return pyValue{kind: kStr, s: s}, err
	case c == '-' || c == '+' || c >= '0' && c <= '9':
		return p.int()
	}
	for _, w := range []struct {
		word string
		v    pyValue
	}{{"True", pyValue{kind: kBool, b: true}}, {"False", pyValue{kind: kBool}}, {"None", pyValue{kind: kNone}}} {
		if strings.HasPrefix(p.s[p.i:], w.word) {
			end := p.i + len(w.word)
			if end < len(p.s) && (isLetter(p.s[end]) || p.s[end] == '_' || p.s[end] >= '0' && p.s[end] <= '9') {
				break
			}
			p.i = end
			return w.v, nil
		}
	}
	return pyValue{}, p.errf("unexpected %q", clip(p.s[p.i:]))
}

func (p *litParser) int() (pyValue, error) {
	start := p.i
	neg := false
	if c := p.s[p.i]; c == '-' || c == '+' {
		neg = c == '-'
		p.i++
		p.space()
	}
	ds := p.i
	for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '_') {
		p.i++
	}
	digits := strings.ReplaceAll(p.s[ds:p.i], "_", "")
	if digits == "" {
		p.i = start
		return pyValue{}, p.errf("malformed number")
	}
	if p.i < len(p.s) && (p.s[p.i] == 'L' || p.s[p.i] == 'l') { // Python 2 long
		p.i++
	}
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E' || p.s[p.i] == 'j' || p.s[p.i] == 'x') {
		return pyValue{}, p.errf("only integers are expected")
	}
	u, err := strconv.ParseUint(digits, 10, 63)
	if err != nil {
		return pyValue{}, convert.Invalidf("npy header: integer %s is out of range", clip(p.s[start:p.i]))
	}
	v := int64(u)
	if neg {
		v = -v
	}
	return pyValue{kind: kInt, i: v}, nil
}

func (p *litParser) str() (string, error) {
	q := p.s[p.i]
	p.i++
	var sb strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return sb.String(), nil
		case c == '\n':
			return "", p.errf("newline inside a string")
		case c == '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", p.errf("unterminated string")
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case '0':
				sb.WriteByte(0)
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.i+n > len(p.s) {
					return "", p.errf("short escape")
				}
				r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil || r > utf8.MaxRune {
					return "", p.errf("bad escape")
				}
				sb.WriteRune(rune(r))
				p.i += n
			default: // \\, \', \" and anything else stand for themselves
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
			p.i++
		}
	}
	return "", p.errf("unterminated string")
}

// seq parses a tuple or list; "(x)" without a comma is x itself, as in Python.
func (p *litParser) seq(depth int, close byte, kind pyKind) (pyValue, error) {
	p.i++
	out := pyValue{kind: kind}
	comma := false
	for {
		p.space()
		if p.i >= len(p.s) {
			return pyValue{}, p.errf("unterminated %c", close)
		}
		if p.s[p.i] == close {
			p.i++
			if kind == kTuple && len(out.items) == 1 && !comma {
				return out.items[0], nil
			}
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return pyValue{}, err
		}
		out.items = append(out.items, v)
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			comma = true
			continue
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != close {
			return pyValue{}, p.errf("expected ',' or %q", close)
		}
	}
}

func (p *litParser) dict(depth int) (pyValue, error) {
	p.i++
	out := pyValue{kind: kDict}
	seen := map[string]bool{}
	for {
		p.space()
		if p.i >= len(p.s) {
			return pyValue{}, p.errf("unterminated dict")
		}
		if p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return pyValue{}, err
		}
		if k.kind != kStr {
			return pyValue{}, p.errf("dict key is not a string")
		}
		if seen[k.s] {
			return pyValue{}, p.errf("dict key %q repeated", k.s)
		}
		seen[k.s] = true
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return pyValue{}, p.errf("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return pyValue{}, err
		}
		out.keys = append(out.keys, k.s)
		out.items = append(out.items, v)
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i >= len(p.s) || p.s[p.i] != '}' {
			return pyValue{}, p.errf("expected ',' or '}'")
		}
	}
}
