// Package numpyobj interprets the numpy records a decoded pickle holds
// (convert/pickle values): ndarrays, dtypes and scalars, as numpy's own
// __reduce__ / __setstate__ write them (numpy/core/src/multiarray/methods.c,
// descriptor.c; numpy 1.x "numpy.core" and 2.x "numpy._core" names):
//
//	_reconstruct(ndarray, (0,), b'b') + BUILD (version, shape, dtype, is_fortran, data)
//	_frombuffer(buffer, dtype, shape, order)           (protocol 5)
//	scalar(dtype, bytes)                               (numpy scalars)
//	dtype(kind, align, copy) + BUILD (3, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
//
// The array's bytes stay where the pickle left them (a *pickle.Bytes, which
// may be a range of the file); Values streams them as the logical values,
// C order, little-endian. Shapes are checked with convert.CheckedNumel and the
// data length against shape times itemsize before anything is read.
//
// PyTorch's readers use it for tensors rebuilt from numpy, scikit-learn's for
// every fitted array; joblib's NumpyArrayWrapper readers build an Array directly.
package numpyobj

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
)

// DType is a numpy dtype as far as export needs it.
type DType struct {
	Descr     string        // numpy's str form: "<f8", "|b1", ">i4", "<U5", "|O"
	DType     convert.DType // "" when not exportable (Skip says why)
	ItemSize  int
	BigEndian bool
	Skip      string // why arrays of this dtype are not exported
}

// Array is an ndarray recorded in a pickle.
type Array struct {
	DType
	Shape   []int64
	Fortran bool
	Data    *pickle.Bytes // raw element bytes in Fortran or C order and in the dtype's byte order; nil for object arrays
}

// Numel is the number of elements (the shape was checked when the Array was made).
func (a *Array) Numel() int64 {
	n := int64(1)
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// isNumpy reports whether g is numpy's name for module.name in numpy 1 or 2.
func isNumpy(g pickle.Global, module, name string) bool {
	return g.Name == name && (g.Module == "numpy."+module || g.Module == "numpy._"+module)
}

// ParseDescr parses a numpy type string such as "<f8", "f4", "|b1", ">i2", "O8", "<U5".
func ParseDescr(s string) DType {
	d := DType{Descr: s}
	body := s
	if body != "" && strings.ContainsRune("<>|=!", rune(body[0])) {
		d.BigEndian = body[0] == '>' || body[0] == '!'
		body = body[1:]
	}
	if body == "" {
		d.Skip = fmt.Sprintf("numpy dtype %q is not understood", s)
		return d
	}
	kind := body[0]
	size := 0
	if len(body) > 1 {
		n, err := strconv.Atoi(body[1:])
		if err != nil || n < 0 || n > 1<<30 {
			d.Skip = fmt.Sprintf("numpy dtype %q is not understood", s)
			return d
		}
		size = n
	}
	d.ItemSize = size
	switch kind {
	case 'f':
		switch size {
		case 2:
			d.DType = convert.Float16
		case 4:
			d.DType = convert.Float32
		case 8:
			d.DType = convert.Float64
		default:
			d.Skip = fmt.Sprintf("numpy float%d (%s) is not exported", size*8, s)
		}
	case 'i':
		d.DType = map[int]convert.DType{1: convert.Int8, 2: convert.Int16, 4: convert.Int32, 8: convert.Int64}[size]
	case 'u':
		d.DType = map[int]convert.DType{1: convert.Uint8, 2: convert.Uint16, 4: convert.Uint32, 8: convert.Uint64}[size]
	case 'b':
		if size == 1 {
			d.DType = convert.Bool
		}
	case 'c':
		d.Skip = fmt.Sprintf("numpy complex (%s) is not exported", s)
	case 'O':
		d.Skip = "numpy object arrays are not exported"
		d.ItemSize = 8
	case 'U', 'S', 'a':
		d.Skip = fmt.Sprintf("numpy string arrays (%s) are not exported", s)
	case 'M', 'm':
		d.Skip = fmt.Sprintf("numpy datetime/timedelta arrays (%s) are not exported", s)
	case 'V':
		d.Skip = fmt.Sprintf("numpy structured or void arrays (%s) are not exported", s)
	default:
		d.Skip = fmt.Sprintf("numpy dtype %q is not understood", s)
	}
	if d.DType == "" && d.Skip == "" {
		d.Skip = fmt.Sprintf("numpy dtype %q is not understood", s)
	}
	if d.ItemSize <= 1 {
		d.BigEndian = false
	}
	return d
}

// DTypeOf interprets a numpy.dtype record (REDUCE numpy.dtype + BUILD state).
// ok is false when v is not one.
func DTypeOf(v any) (d DType, ok bool, err error) {
	o, isObj := v.(*pickle.Object)
	if !isObj || !(o.Class.Is("numpy", "dtype") || isNumpy(o.Class, "core.multiarray", "dtype")) {
		return DType{}, false, nil
	}
	if len(o.Args) < 1 {
		return DType{}, true, convert.Invalidf("numpy.dtype without arguments")
	}
	kind, isStr := o.Args[0].(string)
	if !isStr {
		return DType{}, true, convert.Invalidf("numpy.dtype of a non-string")
	}
	order := ""
	if st, isTuple := o.State.(*pickle.Tuple); isTuple && len(st.Items) >= 2 {
		if s, _ := st.Items[1].(string); s == "<" || s == ">" || s == "|" || s == "=" {
			order = s
		}
		// subarray (index 2) or fields (index 4) make a structured dtype
		if len(st.Items) >= 5 {
			_, noSub := st.Items[2].(pickle.None)
			_, noFields := st.Items[4].(pickle.None)
			if !noSub || !noFields {
				return DType{Descr: kind, Skip: fmt.Sprintf("numpy structured dtype (%s) is not exported", kind)}, true, nil
			}
		}
	}
	if order == "=" {
		order = "<" // native order of the writer; every platform numpy ships on is little-endian
	}
	return ParseDescr(order + kind), true, nil
}

// FromValue interprets v as an ndarray or numpy scalar record. ok is false
// when v is neither. A record whose shape, dtype or data do not agree is ErrInvalid.
func FromValue(v any) (a *Array, ok bool, err error) {
	o, isObj := v.(*pickle.Object)
	if !isObj {
		return nil, false, nil
	}
	switch {
	case isNumpy(o.Class, "core.multiarray", "_reconstruct"):
		a, err = fromReconstruct(o)
	case isNumpy(o.Class, "core.numeric", "_frombuffer"):
		a, err = fromBuffer(o)
	case isNumpy(o.Class, "core.multiarray", "scalar"):
		a, err = fromScalar(o)
	default:
		return nil, false, nil
	}
	return a, true, err
}

// NotExported is why objects of class c are not exported although they
// hold arrays, or "" for any other class: a random generator's state, a
// masked array (its mask would be lost) and pandas objects are not weights.
func NotExported(c pickle.Global) string {
	switch {
	case strings.HasPrefix(c.Module, "numpy.random"):
		return "numpy random generator state is not exported"
	case c.Is("numpy.ma.core", "_mareconstruct") || c.Is("numpy.ma.core", "MaskedArray"):
		return "numpy masked arrays are not exported"
	case strings.HasPrefix(c.Module, "pandas."):
		return "pandas objects are not exported"
	}
	return ""
}

func fromReconstruct(o *pickle.Object) (*Array, error) {
	st, ok := o.State.(*pickle.Tuple)
	if !ok {
		return nil, convert.Invalidf("numpy array record without state")
	}
	items := st.Items
	if len(items) == 5 { // (version, shape, dtype, is_fortran, data)
		items = items[1:]
	}
	if len(items) != 4 {
		return nil, convert.Invalidf("numpy array state has %d items", len(st.Items))
	}
	shape, err := Shape(items[0])
	if err != nil {
		return nil, err
	}
	dt, isDT, err := DTypeOf(items[1])
	if err != nil {
		return nil, err
	}
	if !isDT {
		return nil, convert.Invalidf("numpy array state without a dtype")
	}
	fortran, _ := items[2].(bool)
	if i, isInt := items[2].(int64); isInt {
		fortran = i != 0
	}
	a := &Array{DType: dt, Shape: shape, Fortran: fortran}
	if dt.Skip != "" {
		if _, err := convert.CheckedNumel(shape, max(dt.ItemSize, 1)); err != nil {
			return nil, err
		}
		return a, nil
	}
	data, isBytes, err := pickle.AsBytes(items[3])
	if err != nil {
		return nil, err
	}
	if !isBytes {
		return nil, convert.Invalidf("numpy %s array data is a %T, not bytes", dt.Descr, items[3])
	}
	a.Data = data
	return a, a.check()
}

func fromBuffer(o *pickle.Object) (*Array, error) {
	if len(o.Args) != 4 {
		return nil, convert.Invalidf("numpy _frombuffer with %d arguments", len(o.Args))
	}
	data, isBytes, err := pickle.AsBytes(o.Args[0])
	if err != nil {
		return nil, err
	}
	if !isBytes {
		return nil, convert.Invalidf("numpy _frombuffer of a non-buffer")
	}
	dt, isDT, err := DTypeOf(o.Args[1])
	if err != nil {
		return nil, err
	}
	if !isDT {
		return nil, convert.Invalidf("numpy _frombuffer without a dtype")
	}
	shape, err := Shape(o.Args[2])
	if err != nil {
		return nil, err
	}
	order, _ := o.Args[3].(string)
	a := &Array{DType: dt, Shape: shape, Fortran: order == "F", Data: data}
	if dt.Skip != "" {
		a.Data = nil
		_, err := convert.CheckedNumel(shape, max(dt.ItemSize, 1))
		return a, err
	}
	return a, a.check()
}

func fromScalar(o *pickle.Object) (*Array, error) {
	if len(o.Args) < 1 {
		return nil, convert.Invalidf("numpy scalar without a dtype")
	}
	dt, isDT, err := DTypeOf(o.Args[0])
	if err != nil {
		return nil, err
	}
	if !isDT {
		return nil, convert.Invalidf("numpy scalar without a dtype")
	}
	a := &Array{DType: dt, Shape: []int64{}}
	if dt.Skip != "" {
		return a, nil
	}
	if len(o.Args) != 2 {
		return nil, convert.Invalidf("numpy scalar with %d arguments", len(o.Args))
	}
	data, isBytes, err := pickle.AsBytes(o.Args[1])
	if err != nil {
		return nil, err
	}
	if !isBytes {
		return nil, convert.Invalidf("numpy %s scalar data is not bytes", dt.Descr)
	}
	a.Data = data
	return a, a.check()
}

// Shape reads a pickled shape: a tuple (or list) of non-negative ints.
func Shape(v any) ([]int64, error) {
	var items []any
	switch t := v.(type) {
	case *pickle.Tuple:
		items = t.Items
	case *pickle.List:
		items = t.Items
	case int64: // numpy accepts a bare int for 1-d
		items = []any{t}
	default:
		return nil, convert.Invalidf("array shape is a %T, not a tuple", v)
	}
	if len(items) > convert.MaxRank {
		return nil, convert.Invalidf("array rank %d exceeds the limit of %d", len(items), convert.MaxRank)
	}
	shape := make([]int64, len(items))
	for i, x := range items {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, convert.Invalidf("array shape has a bad dimension %v", x)
		}
		shape[i] = n
	}
	return shape, nil
}

// check verifies the shape and that the data holds exactly numel*itemsize bytes.
func (a *Array) check() error {
	n, err := convert.CheckedNumel(a.Shape, a.ItemSize)
	if err != nil {
		return err
	}
	if want := n * int64(a.ItemSize); a.Data.Len() != want {
		return convert.Invalidf("numpy %s array of shape %v needs %d bytes, the pickle holds %d", a.Descr, a.Shape, want, a.Data.Len())
	}
	return nil
}

// Values streams the array's logical values: C order, little-endian, as
// convert.Checkpoint.Values wants them (Fortran order through convert.Strided,
// big-endian data byte-swapped).
func (a *Array) Values() (io.ReadCloser, error) {
	if a.Skip != "" || a.Data == nil {
		return nil, convert.Invalidf("numpy array: %s", a.Skip)
	}
	var rc io.ReadCloser
	if a.Fortran && len(a.Shape) > 1 {
		strides := make([]int64, len(a.Shape))
		s := int64(1)
		for k, d := range a.Shape {
			strides[k] = s
			s *= d
		}
		var err error
		if rc, err = convert.OpenStrided(a.Data.ReaderAt(), 0, a.ItemSize, a.Shape, strides); err != nil {
			return nil, err
		}
	} else {
		rc = io.NopCloser(a.Data.Open())
	}
	if a.BigEndian {
		rc = convert.ByteSwapped(rc, a.ItemSize)
	}
	return rc, nil
}
