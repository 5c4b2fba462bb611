// Package pickle reads Python pickles (protocols 0 to 5) into inert Go values,
// without executing anything: no import, no call, no attribute lookup happens.
// PyTorch checkpoints, scikit-learn pickles and joblib files are all pickles;
// their readers (convert/pytorch, convert/sklearn) build on this package.
//
// # Using it
//
// Parse one pickle into a value tree:
//
//	v, err := pickle.Unmarshal(data, pickle.Options{Limits: lim})
//
// or, for a pickle inside a larger file (bytes past a threshold are then left
// in place and read on demand, see Bytes):
//
//	d := pickle.NewDecoderAt(src, off, size, pickle.Options{Limits: lim})
//	v, err := d.Decode() // may be called again for a following pickle
//	next := d.Offset()   // where the bytes after the pickle's STOP start
//
// The tree holds these Go types, and nothing else (no Go nil):
//
//	None            None{}
//	bool            bool
//	int             int64, or *big.Int when it does not fit
//	float           float64
//	str             string (UTF-8); a Python 2 str (STRING, BINSTRING) is a string of its raw bytes
//	bytes/bytearray *Bytes (held in memory, or a range of the input)
//	tuple           *Tuple
//	list            *List
//	dict            *Dict (insertion order kept)
//	set/frozenset   *Set
//	a global        Global{Module, Name}: a reference to a class or function, never resolved
//	REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ
//	                *Object: "call Class with Args", plus what BUILD, SETITEM(S)
//	                and APPEND(S) did to the result, recorded
//	persistent id   *PersID, or what Options.Persistent returned
//
// Containers are pointers: a pickle's memo can make the tree a DAG or give it
// cycles (a list that contains itself). Code walking a tree must track what it
// has visited and bound its depth; Walk does both.
//
// # What is refused
//
// Decoding enforces a policy as it goes and fails with an error wrapping
// convert.ErrInvalid that names the global:
//   - a global that can run code (os.system, builtins.eval, subprocess.Popen,
//     importlib, pickle.loads, ... see Denied) is refused as soon as GLOBAL,
//     STACK_GLOBAL or INST names it, whatever it is then used for;
//   - REDUCE, INST and OBJ call their callable when Python unpickles, which is how
//     every pickle payload runs: their callable must be a Global that is on the
//     allow-list (DefaultCallable, or Options.AllowCall). An unknown callable, or
//     a callable that is not a Global at all (the result of another call), is refused;
//   - builtins.getattr is the one exception to naming: Python pickles a bound
//     method as getattr(instance, "name") (old torch LR schedulers put one in
//     checkpoints), so getattr is checked where it is called: REDUCE on an
//     instance built by this pickle and a plain method name is recorded; any
//     other use is refused;
//   - NEWOBJ / NEWOBJ_EX (cls.__new__, no __init__) of any class that is not
//     denied makes an inert *Object: a user's __main__.Net, torch.nn modules and
//     scikit-learn estimators are read this way, and their state walked;
//   - BUILD applies only to an *Object, and its state may not set dunder methods
//     (__setstate__, __reduce__, ...): a second BUILD would otherwise call them;
//   - EXT1/2/4 (the copyreg extension registry can name any global), NEXT_BUFFER
//     (out-of-band buffers), STACK_GLOBAL with a module or name that is not a
//     plain string, and protocol numbers above 5.
//
// # Limits
//
// Every length read from the stream is checked against the bytes that remain
// (or, for a stream of unknown size, read incrementally) before anything is
// allocated; the memory decoded values take is bounded by Limits.MaxHeaderBytes,
// the memo by MaxPickleMemo, the MARK stack by MaxPickleDepth; decimal integers
// by 4300 digits, as in CPython. No input makes Decode panic.
//
// # Why not a library
//
// This reader is written by hand. github.com/nlpodyssey/gopickle allocates
// lengths taken from the stream before reading (a 14-byte pickle exhausts
// memory) and has not changed in years; github.com/kisielk/og-rek has the right
// inert design but lacks NEWOBJ, which every PyTorch and scikit-learn pickle uses.
//
// Interpretation is separate: convert/pickle/numpyobj turns numpy records
// (ndarray, dtype, scalar) into array descriptions, convert/pytorch turns
// torch's rebuild records into tensors.
package pickle

import (
	"bytes"
	"fmt"
	"io"
	"math/big"

	"ckpt2csv/convert"
)

// None is Python's None.
type None struct{}

// Global is a reference to a module-level class or function (GLOBAL,
// STACK_GLOBAL, INST). It is never imported or resolved. Python 2 module names
// are mapped to their Python 3 names (__builtin__ -> builtins, copy_reg -> copyreg).
type Global struct {
	Module, Name string
}

func (g Global) String() string { return g.Module + "." + g.Name }

// Is reports whether g is module.name.
func (g Global) Is(module, name string) bool { return g.Module == module && g.Name == name }

// Tuple is a Python tuple.
type Tuple struct {
	Items []any
}

// List is a Python list.
type List struct {
	Items []any
}

// Set is a Python set or frozenset.
type Set struct {
	Items  []any
	Frozen bool
}

// Item is one key-value pair of a Dict.
type Item struct {
	Key, Value any
}

// Dict is a Python dict. Items keep insertion order; setting an existing
// scalar key (str, int, bool, float, None, Global) replaces its value in place,
// as Python does.
type Dict struct {
	Items []Item
	index map[any]int
}

// Get returns the value of key (a string, int64, ...) and whether it is present.
func (d *Dict) Get(key any) (any, bool) {
	if d == nil {
		return nil, false
	}
	if k, ok := hashKey(key); ok && d.index != nil {
		if i, ok := d.index[k]; ok {
			return d.Items[i].Value, true
		}
		return nil, false
	}
	for _, it := range d.Items {
		if it.Key == key {
			return it.Value, true
		}
	}
	return nil, false
}

// Len is the number of items.
func (d *Dict) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Items)
}

// Set sets key to value, replacing an existing scalar key in place.
func (d *Dict) Set(key, value any) {
	if k, ok := hashKey(key); ok {
		if d.index == nil {
			d.index = make(map[any]int)
		}
		if i, ok := d.index[k]; ok {
			d.Items[i].Value = value
			return
		}
		d.index[k] = len(d.Items)
	}
	d.Items = append(d.Items, Item{key, value})
}

// hashKey maps Python-equal scalar keys to one Go map key (True == 1 == 1.0).
func hashKey(k any) (any, bool) {
	switch k := k.(type) {
	case string, int64, None, Global:
		return k, true
	case bool:
		if k {
			return int64(1), true
		}
		return int64(0), true
	case float64:
		if i := int64(k); float64(i) == k {
			return i, true
		}
		return k, k == k // NaN keys never compare equal
	case *big.Int:
		if k.IsInt64() {
			return k.Int64(), true // 1 == 1L
		}
		return "\x00bigint:" + k.Text(16), true // linear: decimal is not
	}
	return nil, false
}

// Op names the opcode that made an Object.
type Op uint8

const (
	OpReduce   Op = iota + 1 // REDUCE: Class(*Args)
	OpNewObj                 // NEWOBJ: Class.__new__(Class, *Args)
	OpNewObjEx               // NEWOBJ_EX: Class.__new__(Class, *Args, **Kwargs)
	OpInst                   // INST: Class(*Args)
	OpObj                    // OBJ: Class(*Args)
)

func (o Op) String() string {
	switch o {
	case OpReduce:
		return "REDUCE"
	case OpNewObj:
		return "NEWOBJ"
	case OpNewObjEx:
		return "NEWOBJ_EX"
	case OpInst:
		return "INST"
	case OpObj:
		return "OBJ"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Object records what Python would have built by calling Class: nothing was called.
type Object struct {
	Op     Op
	Class  Global // the callable (REDUCE) or class (NEWOBJ, INST, OBJ)
	Args   []any
	Kwargs *Dict // NEWOBJ_EX only; nil otherwise
	// State is the argument of the last BUILD (nil when there was none):
	// usually a *Dict of attributes, or a *Tuple (dict, slots dict) for classes
	// with __slots__, or whatever the class's __getstate__ returned.
	State any
	// Items and List record SETITEM(S) and APPEND(S) applied to the object
	// (an OrderedDict made by REDUCE, a dict or list subclass).
	Items *Dict
	List  []any
}

// Attrs is the object's attribute dict as BUILD set it: State when it is a
// dict, or the merge of the (dict, slots) pair. It is nil when there is none.
func (o *Object) Attrs() *Dict {
	switch s := o.State.(type) {
	case *Dict:
		return s
	case *Tuple:
		if len(s.Items) != 2 {
			return nil
		}
		d, _ := s.Items[0].(*Dict)
		slots, _ := s.Items[1].(*Dict)
		if slots == nil {
			return d
		}
		if d == nil {
			return slots
		}
		m := &Dict{}
		for _, it := range d.Items {
			m.Set(it.Key, it.Value)
		}
		for _, it := range slots.Items {
			m.Set(it.Key, it.Value)
		}
		return m
	}
	return nil
}

// PersID is a persistent id (PERSID, BINPERSID) left for the caller to resolve
// when Options.Persistent is nil. PyTorch stores its tensor storages this way.
type PersID struct {
	ID any
}

// Bytes is a bytes or bytearray object. Short ones, and all of those read from
// a stream, are held in Data. Long ones read by a Decoder made with
// NewDecoderAt are left in the input: Src, Off and N locate them, so a large
// array pickled inline is never copied into memory.
type Bytes struct {
	Data      []byte
	Src       io.ReaderAt // non-nil: the content is N bytes at Off in Src
	Off, N    int64
	ByteArray bool // bytearray (BYTEARRAY8) rather than bytes
}

// Len is the length in bytes.
func (b *Bytes) Len() int64 {
	if b.Src != nil {
		return b.N
	}
	return int64(len(b.Data))
}

// Open streams the content. A source that ends early is an error wrapping convert.ErrInvalid.
func (b *Bytes) Open() io.Reader {
	if b.Src != nil {
		return convert.Section(b.Src, b.Off, b.N)
	}
	return bytes.NewReader(b.Data)
}

// ReaderAt gives random access to the content (for strided or Fortran-order reads).
func (b *Bytes) ReaderAt() convert.SizedReaderAt {
	if b.Src != nil {
		return io.NewSectionReader(b.Src, b.Off, b.N)
	}
	return bytes.NewReader(b.Data)
}
