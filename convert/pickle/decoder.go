// Decoder: the pickle virtual machine, opcode by opcode, building inert values
// (see the package comment). It follows CPython's Lib/pickle.py and
// Lib/pickletools.py (protocols 0 to 5) and enforces the policy in policy.go.

package pickle

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"ckpt2csv/convert"
)

// Options configure a Decoder. The zero value is usable.
type Options struct {
	// Limits bound memory (MaxHeaderBytes: the bytes decoded values may take),
	// the memo (MaxPickleMemo) and the MARK stack (MaxPickleDepth). Zero
	// fields take convert's defaults.
	Limits convert.Limits
	// AllowCall lets a caller accept more REDUCE / INST / OBJ callables than
	// DefaultCallable (scikit-learn's Cython classes, for instance). It is
	// consulted after Denied, which always wins; the call is recorded, never made.
	AllowCall func(g Global) bool
	// Persistent resolves a persistent id (PERSID, BINPERSID). nil: the id is
	// pushed as a *PersID for the caller.
	Persistent func(id any) (any, error)
	// AfterBuild, when set, is called after each BUILD with the built object
	// and the input positioned just after the BUILD opcode. It may consume
	// bytes that follow in the stream (joblib's NumpyArrayWrapper writes the
	// array there) and returns the value that replaces the object on the stack
	// (obj itself to keep it).
	AfterBuild func(in *Input, obj *Object) (any, error)
	// Context, when set, stops a decode when it ends (a signal, an entry's
	// time limit): a hostile pickle can keep the decoder busy for minutes.
	Context context.Context
}

// Decoder decodes pickles from one input, one after another.
type Decoder struct {
	in    *Input
	opt   Options
	lim   convert.Limits
	stack []any
	marks []int
	memo  map[int64]any
	proto int
}

// NewDecoder reads from a stream. size is the number of bytes the stream
// holds (every length is checked against it), or -1 when unknown (long byte
// strings are then read incrementally, bounded by the memory limit).
func NewDecoder(r io.Reader, size int64, opt Options) *Decoder {
	lim := opt.Limits.Defaults()
	return &Decoder{in: newInput(r, nil, 0, size, lim.MaxHeaderBytes), opt: opt, lim: lim}
}

// NewDecoderAt reads the size bytes at off in r. Byte strings of 64 KiB or
// more are left in r (Bytes.Src), so a pickle holding large arrays inline
// takes no memory for them.
func NewDecoderAt(r io.ReaderAt, off, size int64, opt Options) *Decoder {
	lim := opt.Limits.Defaults()
	return &Decoder{in: newInput(nil, r, off, size, lim.MaxHeaderBytes), opt: opt, lim: lim}
}

// Unmarshal decodes the single pickle in data.
func Unmarshal(data []byte, opt Options) (any, error) {
	return NewDecoder(bytes.NewReader(data), int64(len(data)), opt).Decode()
}

// Offset is the number of input bytes consumed so far: after Decode, where the
// bytes following the pickle's STOP begin (relative to NewDecoderAt's off).
func (d *Decoder) Offset() int64 { return d.in.pos }

// Input is the decoder's input, to read what follows a pickle.
func (d *Decoder) Input() *Input { return d.in }

// recoverPanics is turned off by the fuzz test so that a bug shows as a crash.
var recoverPanics = true

// Decode reads one pickle, up to and including its STOP opcode, and returns
// its value. The memo is per pickle, as in Python.
func (d *Decoder) Decode() (v any, err error) {
	defer func() {
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			v, err = nil, convert.Invalidf("pickle: malformed data near byte %d (%v)", d.in.pos, r)
		}
	}()
	d.stack = d.stack[:0]
	d.marks = d.marks[:0]
	d.memo = make(map[int64]any)
	d.proto = 0
	for n := 0; ; n++ {
		if ctx := d.opt.Context; ctx != nil && n%4096 == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		op, err := d.in.ReadByte()
		if err != nil {
			return nil, err
		}
		done, err := d.step(op)
		if err != nil {
			return nil, err
		}
		if done {
			if len(d.stack) != 1 || len(d.marks) != 0 {
				return nil, d.errf("STOP with %d values and %d marks on the stack", len(d.stack), len(d.marks))
			}
			v := d.stack[0]
			d.stack = d.stack[:0]
			return v, nil
		}
	}
}

func (d *Decoder) errf(format string, a ...any) error {
	return convert.Invalidf("pickle: "+format+" (at byte %d)", append(a, d.in.pos)...)
}

// push adds v to the stack; the stack's slots count against the memory limit.
func (d *Decoder) push(v any) error {
	if len(d.stack) == cap(d.stack) {
		if err := d.in.charge(16 * int64(max(cap(d.stack), 16))); err != nil {
			return err
		}
	}
	d.stack = append(d.stack, v)
	return nil
}

func (d *Decoder) pop() (any, error) {
	n := len(d.stack)
	if n == 0 || (len(d.marks) > 0 && d.marks[len(d.marks)-1] == n) {
		return nil, d.errf("stack underflow")
	}
	v := d.stack[n-1]
	d.stack[n-1] = nil
	d.stack = d.stack[:n-1]
	return v, nil
}

func (d *Decoder) top() (any, error) {
	n := len(d.stack)
	if n == 0 || (len(d.marks) > 0 && d.marks[len(d.marks)-1] == n) {
		return nil, d.errf("stack underflow")
	}
	return d.stack[n-1], nil
}

// popMark pops the items above the last MARK, and the MARK.
func (d *Decoder) popMark() ([]any, error) {
	if len(d.marks) == 0 {
		return nil, d.errf("no MARK on the stack")
	}
	m := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items := append([]any(nil), d.stack[m:]...)
	clear(d.stack[m:])
	d.stack = d.stack[:m]
	return items, nil
}

// newValue charges the fixed memory cost of a container and n slots.
func (d *Decoder) newValue(n int) error { return d.in.charge(64 + 16*int64(n)) }

// pushNew charges a new value of n slots, as newValue does, and pushes it.
func (d *Decoder) pushNew(n int, v any) error {
	if err := d.newValue(n); err != nil {
		return err
	}
	return d.push(v)
}

func (d *Decoder) memoPut(idx int64, v any) error {
	if idx < 0 {
		return d.errf("negative memo index %d", idx)
	}
	if _, ok := d.memo[idx]; !ok {
		if len(d.memo) >= d.lim.MaxPickleMemo {
			return d.errf("memo holds more than %d entries", d.lim.MaxPickleMemo)
		}
		if err := d.in.charge(48); err != nil {
			return err
		}
	}
	d.memo[idx] = v
	return nil
}

func (d *Decoder) memoGet(idx int64) error {
	v, ok := d.memo[idx]
	if !ok {
		return d.errf("memo key %d is not set", idx)
	}
	return d.push(v)
}

func (d *Decoder) u8() (uint64, error) {
	c, err := d.in.ReadByte()
	return uint64(c), err
}

func (d *Decoder) le(n int) (uint64, error) {
	var b [8]byte
	if err := d.in.readFull(b[:n]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// length reads an n-byte little-endian length; lengths past the int64 range are refused.
func (d *Decoder) length(n int) (int64, error) {
	v, err := d.le(n)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt64 {
		return 0, d.errf("length %d is too large", v)
	}
	return int64(v), nil
}

func (d *Decoder) str(n int64, what string) (string, error) {
	b, err := d.in.readN(n, what)
	return string(b), err
}

func (d *Decoder) pushBytes(n int64, bytearray bool) error {
	b, err := d.in.Take(n)
	if err != nil {
		return err
	}
	b.ByteArray = bytearray
	return d.pushNew(0, b)
}

// step executes one opcode. It returns done at STOP.
func (d *Decoder) step(op byte) (done bool, err error) {
	switch op {
	case '.': // STOP
		return true, nil
	case 0x80: // PROTO
		v, err := d.u8()
		if err != nil {
			return false, err
		}
		if v > 5 {
			return false, d.errf("unsupported pickle protocol %d", v)
		}
		d.proto = int(v)
	case 0x95: // FRAME: framing is only a hint for buffering; its length must fit.
		n, err := d.length(8)
		if err != nil {
			return false, err
		}
		return false, d.in.checkLen(n, "frame")
	case '(': // MARK
		if len(d.marks) >= d.lim.MaxPickleDepth {
			return false, d.errf("MARKs nested deeper than %d", d.lim.MaxPickleDepth)
		}
		d.marks = append(d.marks, len(d.stack))
	case '0': // POP
		if len(d.stack) > 0 && (len(d.marks) == 0 || d.marks[len(d.marks)-1] < len(d.stack)) {
			_, err = d.pop()
			return false, err
		}
		// POP of a MARK (pickle.py pops the mark)
		if len(d.marks) == 0 {
			return false, d.errf("POP on an empty stack")
		}
		d.marks = d.marks[:len(d.marks)-1]
	case '1': // POP_MARK
		_, err = d.popMark()
	case '2': // DUP
		v, err := d.top()
		if err != nil {
			return false, err
		}
		return false, d.push(v)

	// --- scalars
	case 'N':
		return false, d.push(None{})
	case 0x88:
		return false, d.push(true)
	case 0x89:
		return false, d.push(false)
	case 'J': // BININT
		v, err := d.le(4)
		if err != nil {
			return false, err
		}
		return false, d.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := d.u8()
		if err != nil {
			return false, err
		}
		return false, d.push(int64(v))
	case 'M': // BININT2
		v, err := d.le(2)
		if err != nil {
			return false, err
		}
		return false, d.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		var n int64
		if op == 0x8a {
			v, err := d.u8()
			if err != nil {
				return false, err
			}
			n = int64(v)
		} else {
			v, err := d.le(4)
			if err != nil {
				return false, err
			}
			n = int64(int32(uint32(v)))
			if n < 0 {
				return false, d.errf("LONG4 with negative length %d", n)
			}
		}
		if n > maxLongBytes {
			return false, d.errf("integer of %d bytes exceeds the limit of %d", n, maxLongBytes)
		}
		b, err := d.in.readN(n, "LONG")
		if err != nil {
			return false, err
		}
		return false, d.push(decodeLong(b))
	case 'I': // INT
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		switch line {
		case "00":
			return false, d.push(false)
		case "01":
			return false, d.push(true)
		}
		v, err := d.parseInt(line)
		if err != nil {
			return false, err
		}
		return false, d.push(v)
	case 'L': // LONG
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		v, err := d.parseInt(strings.TrimSuffix(line, "L"))
		if err != nil {
			return false, err
		}
		return false, d.push(v)
	case 'F': // FLOAT
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
		if err != nil && !isRangeErr(err) {
			return false, d.errf("bad FLOAT %q", clip(line))
		}
		return false, d.push(f)
	case 'G': // BINFLOAT, big-endian
		var b [8]byte
		if err := d.in.readFull(b[:]); err != nil {
			return false, err
		}
		return false, d.push(math.Float64frombits(binary.BigEndian.Uint64(b[:])))

	// --- strings and bytes
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		var n int64
		switch op {
		case 'X':
			n, err = d.length(4)
		case 0x8c:
			var v uint64
			v, err = d.u8()
			n = int64(v)
		default:
			n, err = d.length(8)
		}
		if err != nil {
			return false, err
		}
		s, err := d.str(n, "string")
		if err != nil {
			return false, err
		}
		return false, d.push(s)
	case 'V': // UNICODE: raw-unicode-escape text
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		s, err := rawUnicodeEscape(line)
		if err != nil {
			return false, d.errf("%v", err)
		}
		return false, d.push(s)
	case 'S': // STRING: a quoted Python 2 str literal
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		s, err := unquoteStr(strings.TrimRight(line, " \r"))
		if err != nil {
			return false, d.errf("%v", err)
		}
		return false, d.push(s)
	case 'T', 'U': // BINSTRING, SHORT_BINSTRING: Python 2 str
		var n int64
		if op == 'T' {
			v, err := d.le(4)
			if err != nil {
				return false, err
			}
			n = int64(int32(uint32(v)))
		} else {
			v, err := d.u8()
			if err != nil {
				return false, err
			}
			n = int64(v)
		}
		s, err := d.str(n, "string")
		if err != nil {
			return false, err
		}
		return false, d.push(s)
	case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		var n int64
		switch op {
		case 'B':
			n, err = d.length(4)
		case 'C':
			var v uint64
			v, err = d.u8()
			n = int64(v)
		default:
			n, err = d.length(8)
		}
		if err != nil {
			return false, err
		}
		return false, d.pushBytes(n, op == 0x96)
	case 0x97: // NEXT_BUFFER
		return false, d.errf("out-of-band buffers (NEXT_BUFFER) are not supported")
	case 0x98: // READONLY_BUFFER: a flag on the buffer on top; nothing to do
		_, err = d.top()

	// --- containers
	case ')': // EMPTY_TUPLE
		return false, d.pushNew(0, &Tuple{})
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op - 0x84)
		if len(d.stack)-n < d.markTop() {
			return false, d.errf("stack underflow")
		}
		if err := d.newValue(n); err != nil {
			return false, err
		}
		items := append([]any(nil), d.stack[len(d.stack)-n:]...)
		clear(d.stack[len(d.stack)-n:])
		d.stack = d.stack[:len(d.stack)-n]
		return false, d.push(&Tuple{Items: items})
	case 't': // TUPLE
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		return false, d.pushNew(len(items), &Tuple{Items: items})
	case ']': // EMPTY_LIST
		return false, d.pushNew(0, &List{})
	case 'l': // LIST
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		return false, d.pushNew(len(items), &List{Items: items})
	case '}': // EMPTY_DICT
		return false, d.pushNew(0, &Dict{})
	case 'd': // DICT
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		if len(items)%2 != 0 {
			return false, d.errf("DICT with an odd number of items")
		}
		dict := &Dict{}
		if err := d.newValue(len(items)); err != nil {
			return false, err
		}
		for i := 0; i < len(items); i += 2 {
			dict.Set(items[i], items[i+1])
		}
		return false, d.push(dict)
	case 0x8f: // EMPTY_SET
		return false, d.pushNew(0, &Set{})
	case 0x91: // FROZENSET
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		return false, d.pushNew(len(items), &Set{Items: items, Frozen: true})
	case 0x90: // ADDITEMS
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		t, err := d.top()
		if err != nil {
			return false, err
		}
		s, ok := t.(*Set)
		if !ok || s.Frozen {
			return false, d.errf("ADDITEMS on a %s", typeName(t))
		}
		if err := d.in.charge(16 * int64(len(items))); err != nil {
			return false, err
		}
		s.Items = append(s.Items, items...)
	case 'a': // APPEND
		v, err := d.pop()
		if err != nil {
			return false, err
		}
		return false, d.appendTo([]any{v})
	case 'e': // APPENDS
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		return false, d.appendTo(items)
	case 's': // SETITEM
		v, err := d.pop()
		if err != nil {
			return false, err
		}
		k, err := d.pop()
		if err != nil {
			return false, err
		}
		return false, d.setItems([]any{k, v})
	case 'u': // SETITEMS
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		if len(items)%2 != 0 {
			return false, d.errf("SETITEMS with an odd number of items")
		}
		return false, d.setItems(items)

	// --- memo
	case 'p': // PUT
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		idx, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return false, d.errf("bad PUT index %q", clip(line))
		}
		v, err := d.top()
		if err != nil {
			return false, err
		}
		return false, d.memoPut(idx, v)
	case 'q', 'r': // BINPUT, LONG_BINPUT
		var idx uint64
		if op == 'q' {
			idx, err = d.u8()
		} else {
			idx, err = d.le(4)
		}
		if err != nil {
			return false, err
		}
		v, err := d.top()
		if err != nil {
			return false, err
		}
		return false, d.memoPut(int64(idx), v)
	case 0x94: // MEMOIZE
		v, err := d.top()
		if err != nil {
			return false, err
		}
		return false, d.memoPut(int64(len(d.memo)), v)
	case 'g': // GET
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		idx, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return false, d.errf("bad GET index %q", clip(line))
		}
		return false, d.memoGet(idx)
	case 'h', 'j': // BINGET, LONG_BINGET
		var idx uint64
		if op == 'h' {
			idx, err = d.u8()
		} else {
			idx, err = d.le(4)
		}
		if err != nil {
			return false, err
		}
		return false, d.memoGet(int64(idx))

	// --- globals and objects
	case 'c': // GLOBAL
		mod, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		name, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		g, err := d.global(mod, name)
		if err != nil {
			return false, err
		}
		return false, d.push(g)
	case 0x93: // STACK_GLOBAL
		name, err := d.pop()
		if err != nil {
			return false, err
		}
		mod, err := d.pop()
		if err != nil {
			return false, err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return false, d.errf("STACK_GLOBAL with a module or name that is not a string (%s, %s)", typeName(mod), typeName(name))
		}
		g, err := d.global(ms, ns)
		if err != nil {
			return false, err
		}
		return false, d.push(g)
	case 0x82, 0x83, 0x84: // EXT1, EXT2, EXT4
		return false, d.errf("extension registry codes (EXT1/EXT2/EXT4) are not supported: they can name any global")
	case 'R': // REDUCE
		args, err := d.pop()
		if err != nil {
			return false, err
		}
		fn, err := d.pop()
		if err != nil {
			return false, err
		}
		t, ok := args.(*Tuple)
		if !ok {
			return false, d.errf("REDUCE arguments are a %s, not a tuple", typeName(args))
		}
		g, err := d.callable(fn, "REDUCE", t.Items)
		if err != nil {
			return false, err
		}
		o, err := d.reduce(g, t.Items)
		if err != nil {
			return false, err
		}
		return false, d.pushObject(o)
	case 0x81: // NEWOBJ
		args, err := d.pop()
		if err != nil {
			return false, err
		}
		cls, err := d.pop()
		if err != nil {
			return false, err
		}
		t, ok := args.(*Tuple)
		if !ok {
			return false, d.errf("NEWOBJ arguments are a %s, not a tuple", typeName(args))
		}
		g, ok := cls.(Global)
		if !ok {
			return false, d.errf("NEWOBJ on a %s, not a class", typeName(cls))
		}
		if g == getattrGlobal {
			return false, convert.Invalidf("refusing pickle global builtins.getattr: NEWOBJ on it")
		}
		return false, d.pushObject(&Object{Op: OpNewObj, Class: g, Args: t.Items})
	case 0x92: // NEWOBJ_EX
		kw, err := d.pop()
		if err != nil {
			return false, err
		}
		args, err := d.pop()
		if err != nil {
			return false, err
		}
		cls, err := d.pop()
		if err != nil {
			return false, err
		}
		t, ok1 := args.(*Tuple)
		kd, ok2 := kw.(*Dict)
		if !ok1 || !ok2 {
			return false, d.errf("NEWOBJ_EX with arguments %s, %s", typeName(args), typeName(kw))
		}
		g, ok := cls.(Global)
		if !ok {
			return false, d.errf("NEWOBJ_EX on a %s, not a class", typeName(cls))
		}
		if g == getattrGlobal {
			return false, convert.Invalidf("refusing pickle global builtins.getattr: NEWOBJ_EX on it")
		}
		return false, d.pushObject(&Object{Op: OpNewObjEx, Class: g, Args: t.Items, Kwargs: kd})
	case 'i': // INST: calls module.name(*args)
		mod, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		name, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		g, err := d.global(mod, name)
		if err != nil {
			return false, err
		}
		args, err := d.popMark()
		if err != nil {
			return false, err
		}
		if _, err := d.callable(g, "INST", args); err != nil {
			return false, err
		}
		return false, d.pushObject(&Object{Op: OpInst, Class: g, Args: args})
	case 'o': // OBJ: calls args[0](*args[1:])
		items, err := d.popMark()
		if err != nil {
			return false, err
		}
		if len(items) == 0 {
			return false, d.errf("OBJ without a class")
		}
		g, err := d.callable(items[0], "OBJ", items[1:])
		if err != nil {
			return false, err
		}
		return false, d.pushObject(&Object{Op: OpObj, Class: g, Args: items[1:]})
	case 'b': // BUILD
		state, err := d.pop()
		if err != nil {
			return false, err
		}
		t, err := d.top()
		if err != nil {
			return false, err
		}
		o, ok := t.(*Object)
		if !ok {
			return false, d.errf("BUILD on a %s", typeName(t))
		}
		if err := checkState(state); err != nil {
			return false, d.errf("BUILD on %s: %v", o.Class, err)
		}
		o.State = state
		if d.opt.AfterBuild != nil {
			v, err := d.opt.AfterBuild(d.in, o)
			if err != nil {
				return false, err
			}
			d.stack[len(d.stack)-1] = v
		}
	case 'P': // PERSID
		line, err := d.in.readLine()
		if err != nil {
			return false, err
		}
		return false, d.persistent(line)
	case 'Q': // BINPERSID
		id, err := d.pop()
		if err != nil {
			return false, err
		}
		return false, d.persistent(id)
	default:
		return false, d.errf("unknown opcode 0x%02x", op)
	}
	return false, err
}

// reduce records REDUCE g(*args). copyreg's helpers, which protocols 0 and 1
// use where protocol 2 has NEWOBJ, are recorded as the NEWOBJ they stand for,
// so callers see one shape for "an instance of class C".
func (d *Decoder) reduce(g Global, args []any) (*Object, error) {
	switch {
	case g.Is("copyreg", "__newobj__"), g.Is("copyreg", "__newobj_ex__"):
		if len(args) == 0 {
			return nil, d.errf("%s without a class", g)
		}
		cls, ok := args[0].(Global)
		if !ok {
			return nil, d.errf("%s on a %s, not a class", g, typeName(args[0]))
		}
		if cls == getattrGlobal {
			return nil, convert.Invalidf("refusing pickle global builtins.getattr: %s on it", g)
		}
		o := &Object{Op: OpNewObj, Class: cls, Args: args[1:]}
		if g.Name == "__newobj_ex__" {
			if len(args) != 3 {
				return nil, d.errf("%s with %d arguments", g, len(args))
			}
			t, ok1 := args[1].(*Tuple)
			kw, ok2 := args[2].(*Dict)
			if !ok1 || !ok2 {
				return nil, d.errf("%s with arguments %s, %s", g, typeName(args[1]), typeName(args[2]))
			}
			o.Op, o.Args, o.Kwargs = OpNewObjEx, t.Items, kw
		}
		return o, nil
	case g.Is("copyreg", "_reconstructor"):
		// _reconstructor(cls, base, state): base.__new__(cls, state), and
		// base.__init__ unless base is object. Only plain builtin bases.
		if len(args) != 3 {
			return nil, d.errf("%s with %d arguments", g, len(args))
		}
		cls, ok1 := args[0].(Global)
		base, ok2 := args[1].(Global)
		if !ok1 || !ok2 {
			return nil, d.errf("%s on %s, %s", g, typeName(args[0]), typeName(args[1]))
		}
		if cls == getattrGlobal {
			return nil, convert.Invalidf("refusing pickle global builtins.getattr: %s on it", g)
		}
		if base.Module != "builtins" || !builtinsOK[base.Name] {
			return nil, convert.Invalidf("refusing pickle global %s: copyreg._reconstructor would call its __init__", clip(base.String()))
		}
		o := &Object{Op: OpNewObj, Class: cls}
		if _, none := args[2].(None); !none {
			o.Args = []any{args[2]}
		}
		return o, nil
	}
	return &Object{Op: OpReduce, Class: g, Args: args}, nil
}

func (d *Decoder) markTop() int {
	if len(d.marks) == 0 {
		return 0
	}
	return d.marks[len(d.marks)-1]
}

func (d *Decoder) pushObject(o *Object) error { return d.pushNew(len(o.Args), o) }

func (d *Decoder) persistent(id any) error {
	if d.opt.Persistent == nil {
		return d.pushNew(1, &PersID{ID: id})
	}
	v, err := d.opt.Persistent(id)
	if err != nil {
		return err
	}
	return d.push(v)
}

// global checks a GLOBAL / STACK_GLOBAL / INST reference against Denied.
// builtins.getattr is the one denied global checked where it is used rather
// than where it is named (see callable): Python pickles a bound method as
// getattr(instance, "name"), which old torch LR schedulers put in checkpoints.
func (d *Decoder) global(mod, name string) (Global, error) {
	g := Global{Module: mapModule(mod), Name: name}
	if g == getattrGlobal {
		return g, nil
	}
	if why, bad := Denied(g); bad {
		return g, convert.Invalidf("refusing pickle global %s: %s", clip(g.String()), why)
	}
	return g, nil
}

// callable checks what REDUCE, INST and OBJ would call.
func (d *Decoder) callable(fn any, op string, args []any) (Global, error) {
	g, ok := fn.(Global)
	if !ok {
		return Global{}, d.errf("%s calls a %s, not a named global", op, typeName(fn))
	}
	if g == getattrGlobal && op == "REDUCE" && boundMethod(args) {
		return g, nil
	}
	if why, bad := Denied(g); bad { // reached only through a hook's value
		return g, convert.Invalidf("refusing pickle global %s: %s", clip(g.String()), why)
	}
	if DefaultCallable(g) || (d.opt.AllowCall != nil && d.opt.AllowCall(g)) {
		return g, nil
	}
	if m, denied := inModule(g.Module+"."+g.Name, deniedCallModules); denied {
		return g, convert.Invalidf("refusing to call pickle global %s (%s): %s runs code", clip(g.String()), op, m)
	}
	// Any other global is recorded, never called: real checkpoints hold
	// REDUCE records of harmless classes we do not know (a user's Enum, a
	// pathlib.Path among hyper-parameters), and refusing them would refuse
	// the whole checkpoint. What can run code is refused above by name.
	return g, nil
}

func (d *Decoder) appendTo(items []any) error {
	t, err := d.top()
	if err != nil {
		return err
	}
	if err := d.in.charge(16 * int64(len(items))); err != nil {
		return err
	}
	switch l := t.(type) {
	case *List:
		l.Items = append(l.Items, items...)
	case *Object:
		l.List = append(l.List, items...)
	default:
		return d.errf("APPEND to a %s", typeName(t))
	}
	return nil
}

func (d *Decoder) setItems(kv []any) error {
	t, err := d.top()
	if err != nil {
		return err
	}
	if err := d.in.charge(40 * int64(len(kv)/2)); err != nil {
		return err
	}
	var dict *Dict
	switch o := t.(type) {
	case *Dict:
		dict = o
	case *Object:
		if o.Items == nil {
			o.Items = &Dict{}
		}
		dict = o.Items
	default:
		return d.errf("SETITEM on a %s", typeName(t))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		dict.Set(kv[i], kv[i+1])
	}
	return nil
}

// checkState refuses BUILD states that would install special methods on the
// instance: with a second BUILD, Python would call an installed __setstate__.
func checkState(state any) error {
	check := func(d *Dict) error {
		if d == nil {
			return nil
		}
		for _, it := range d.Items {
			if k, ok := it.Key.(string); ok && dangerousAttr[k] {
				return fmt.Errorf("state sets %s", k)
			}
		}
		return nil
	}
	switch s := state.(type) {
	case *Dict:
		return check(s)
	case *Tuple:
		if len(s.Items) == 2 {
			for _, x := range s.Items {
				if dd, ok := x.(*Dict); ok {
					if err := check(dd); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

var dangerousAttr = map[string]bool{
	"__setstate__": true, "__reduce__": true, "__reduce_ex__": true, "__getattr__": true,
	"__getattribute__": true, "__setattr__": true, "__delattr__": true, "__class__": true,
	"__init__": true, "__new__": true, "__call__": true, "__del__": true, "__getstate__": true,
	"__setitem__": true, "__getitem__": true,
}

var getattrGlobal = Global{"builtins", "getattr"}

// boundMethod reports whether getattr's arguments name a plain attribute of
// an instance this pickle built, getattr(obj, "name") (how Python pickles a
// bound method), or of a class the pickle named, getattr(Cls, "NAME") (how
// it pickles an Enum member, common among hyper-parameters). The class went
// through the deny list when it was named, dunder names are refused, and the
// result stays an inert record that is never called.
func boundMethod(args []any) bool {
	if len(args) != 2 {
		return false
	}
	switch a := args[0].(type) {
	case *Object:
	case Global:
		if a.Module == "builtins" { // str.join and friends are gadgets
			return false
		}
	default:
		return false
	}
	name, ok := args[1].(string)
	if !ok || name == "" || strings.HasPrefix(name, "__") || len(name) > 200 {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// decodeLong decodes a little-endian two's complement integer (LONG1, LONG4).
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var buf [8]byte
		copy(buf[:], b)
		if b[len(b)-1]&0x80 != 0 {
			for i := len(b); i < 8; i++ {
				buf[i] = 0xff
			}
		}
		return int64(binary.LittleEndian.Uint64(buf[:]))
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

// maxDigits is CPython's default limit on int <-> decimal string conversion.
const maxDigits = 4300

// maxLongBytes bounds a binary integer (LONG1, LONG4) at about 4.6 times the
// digits CPython prints: a checkpoint holds no larger ones, and a hostile
// pickle re-inserting a 500 KB integer as a dict key took minutes.
const maxLongBytes = 8 << 10

func (d *Decoder) parseInt(s string) (any, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxDigits+1 {
		return nil, d.errf("integer literal of %d digits exceeds the limit of %d", len(s), maxDigits)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, d.errf("bad integer literal %q", clip(s))
	}
	if v.IsInt64() {
		return v.Int64(), nil
	}
	return v, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// rawUnicodeEscape decodes Python's raw-unicode-escape: \uXXXX and \UXXXXXXXX
// escapes; every other byte is a Latin-1 code point.
func rawUnicodeEscape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", fmt.Errorf("truncated \\u escape in UNICODE")
			}
			v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil || v > utf8.MaxRune {
				return "", fmt.Errorf("bad \\u escape in UNICODE")
			}
			b.WriteRune(rune(v))
			i += 1 + n
			continue
		}
		b.WriteRune(rune(c))
	}
	return b.String(), nil
}

// unquoteStr decodes a protocol 0 STRING argument: a Python 2 str repr in
// single or double quotes with backslash escapes; the result is raw bytes.
func unquoteStr(s string) (string, error) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", fmt.Errorf("STRING argument is not quoted")
	}
	s = s[1 : len(s)-1]
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case 'a':
			b = append(b, 7)
		case 'b':
			b = append(b, 8)
		case 'f':
			b = append(b, 12)
		case 'v':
			b = append(b, 11)
		case '\\', '\'', '"':
			b = append(b, e)
		case '\n':
		case 'x':
			if i+3 > len(s) {
				return "", fmt.Errorf("truncated \\x escape in STRING")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad \\x escape in STRING")
			}
			b = append(b, byte(v))
			i += 2
		default:
			if e >= '0' && e <= '7' {
				v, k := 0, 0
				for k < 3 && i+k < len(s) && s[i+k] >= '0' && s[i+k] <= '7' {
					v = v*8 + int(s[i+k]-'0')
					k++
				}
				b = append(b, byte(v))
				i += k - 1
				continue
			}
			b = append(b, '\\', e)
		}
	}
	return string(b), nil
}

// clip shortens text from the stream for an error message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func typeName(v any) string {
	switch v := v.(type) {
	case None:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *Bytes:
		return "bytes"
	case *Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case Global:
		return "global " + clip(v.String())
	case *Object:
		return "result of " + clip(v.Class.String())
	case *PersID:
		return "persistent id"
	}
	return fmt.Sprintf("%T", v)
}
