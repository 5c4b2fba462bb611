// numpy dtypes beyond what numpyobj exports: the item size from the dtype's
// state (a "<U5" string is 20 bytes, which joblib needs to skip), and
// structured dtypes, whose fields become tensors of their own (a decision
// tree's node records: left_child, threshold, ...).
//
// A numpy.dtype record is REDUCE numpy.dtype(kind, align, copy) + BUILD
// (version, byteorder, subarray, names, fields, elsize, alignment, flags
// [, metadata]) (numpy/core/src/multiarray/descriptor.c, arraydescr_setstate):
// names is a tuple of field names, fields a dict name -> (dtype, offset[,
// title]), subarray (base dtype, shape) for a field such as ('b', '<i4', (2,)).
package sklearn

import (
	"fmt"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
)

// field is one exportable leaf of a structured dtype.
type field struct {
	name   string // dotted for nested structured fields
	dt     numpyobj.DType
	offset int64   // in the record
	sub    []int64 // subarray shape
}

// dtypeState returns the BUILD state items of a numpy.dtype record.
func dtypeState(v any) []any {
	o, ok := v.(*pickle.Object)
	if !ok {
		return nil
	}
	if st, ok := o.State.(*pickle.Tuple); ok {
		return st.Items
	}
	return nil
}

// itemSize is the dtype's elsize from its state, else what numpyobj parsed.
func itemSize(v any, dt numpyobj.DType) int64 {
	if st := dtypeState(v); len(st) >= 6 {
		if n, ok := st[5].(int64); ok && n > 0 {
			return n
		}
	}
	return int64(dt.ItemSize)
}

// isStructured reports whether a numpy.dtype record has fields or a subarray.
func isStructured(v any) bool {
	st := dtypeState(v)
	if len(st) < 5 {
		return false
	}
	_, noSub := st[2].(pickle.None)
	_, noFields := st[4].(pickle.None)
	return !noSub || !noFields
}

// structFields flattens a structured dtype into its leaves. skip collects the
// fields that cannot be exported, with a reason.
func structFields(v any, prefix string, base int64, depth int, out *[]field, skip *[]convert.Skipped) error {
	if depth > 16 {
		return convert.Invalidf("numpy structured dtype nested deeper than 16")
	}
	st := dtypeState(v)
	if len(st) < 6 {
		return convert.Invalidf("numpy dtype record without state")
	}
	if sub, ok := st[2].(*pickle.Tuple); ok {
		// a subarray dtype: (base dtype, shape)
		if len(sub.Items) != 2 {
			return convert.Invalidf("numpy subarray dtype with %d items", len(sub.Items))
		}
		shape, err := numpyobj.Shape(sub.Items[1])
		if err != nil {
			return err
		}
		var inner []field
		if err := structFields(sub.Items[0], prefix, 0, depth+1, &inner, skip); err != nil {
			return err
		}
		if len(inner) != 1 || len(inner[0].sub) != 0 || inner[0].name != prefix {
			*skip = append(*skip, convert.Skipped{Name: prefix, Reason: "numpy subarray of a structured dtype is not exported"})
			return nil
		}
		f := inner[0]
		f.offset = base
		f.sub = shape
		*out = append(*out, f)
		return nil
	}
	names, _ := st[3].(*pickle.Tuple)
	fields, _ := st[4].(*pickle.Dict)
	if names == nil || fields == nil {
		dt, ok, err := numpyobj.DTypeOf(v)
		if err != nil {
			return err
		}
		if !ok {
			return convert.Invalidf("numpy structured field dtype is not a dtype record")
		}
		if dt.Skip != "" {
			*skip = append(*skip, convert.Skipped{Name: prefix, Reason: dt.Skip})
			return nil
		}
		*out = append(*out, field{name: prefix, dt: dt, offset: base})
		return nil
	}
	size, _ := st[5].(int64)
	for _, n := range names.Items {
		name, ok := n.(string)
		if !ok {
			return convert.Invalidf("numpy structured dtype field name is not a string")
		}
		fv, ok := fields.Get(name)
		ft, _ := fv.(*pickle.Tuple)
		if !ok || ft == nil || len(ft.Items) < 2 {
			return convert.Invalidf("numpy structured dtype: field %q has no (dtype, offset)", name)
		}
		off, ok := ft.Items[1].(int64)
		if !ok || off < 0 || (size > 0 && off > size) {
			return convert.Invalidf("numpy structured dtype: field %q has a bad offset", name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if err := structFields(ft.Items[0], path, base+off, depth+1, out, skip); err != nil {
			return err
		}
	}
	return nil
}

// structured describes an array with a structured dtype.
type structured struct {
	fields   []field
	skipped  []convert.Skipped // names relative to the array
	itemSize int64
}

// parseStructured reads a structured dtype record and checks every field
// lies inside the record.
func parseStructured(dtv any) (*structured, error) {
	s := &structured{}
	if err := structFields(dtv, "", 0, 0, &s.fields, &s.skipped); err != nil {
		return nil, err
	}
	st := dtypeState(dtv)
	s.itemSize, _ = st[5].(int64)
	if s.itemSize <= 0 || s.itemSize > 1<<30 {
		return nil, convert.Invalidf("numpy structured dtype with item size %d", s.itemSize)
	}
	for _, f := range s.fields {
		n, err := convert.CheckedNumel(f.sub, f.dt.ItemSize)
		if err != nil {
			return nil, err
		}
		if end := f.offset + n*int64(f.dt.ItemSize); end > s.itemSize {
			return nil, convert.Invalidf("numpy structured dtype: field %q ends at byte %d of a %d-byte record", f.name, end, s.itemSize)
		}
	}
	return s, nil
}

// structuredArray interprets an ndarray record (_reconstruct or _frombuffer)
// whose dtype is structured, which numpyobj leaves unexported.
func structuredArray(o *pickle.Object) (*array, error) {
	var shapeV, dtV, dataV any
	fortran := false
	switch o.Class.Name {
	case "_reconstruct":
		st, ok := o.State.(*pickle.Tuple)
		if !ok || (len(st.Items) != 5 && len(st.Items) != 4) {
			return nil, convert.Invalidf("numpy array record without a valid state")
		}
		it := st.Items[len(st.Items)-4:]
		shapeV, dtV, dataV = it[0], it[1], it[3]
		switch f := it[2].(type) {
		case bool:
			fortran = f
		case int64:
			fortran = f != 0
		}
	case "_frombuffer":
		if len(o.Args) != 4 {
			return nil, convert.Invalidf("numpy _frombuffer with %d arguments", len(o.Args))
		}
		dataV, dtV, shapeV = o.Args[0], o.Args[1], o.Args[2]
		order, _ := o.Args[3].(string)
		fortran = order == "F"
	default:
		return nil, convert.Invalidf("numpy %s with a structured dtype is not supported", o.Class)
	}
	shape, err := numpyobj.Shape(shapeV)
	if err != nil {
		return nil, err
	}
	s, err := parseStructured(dtV)
	if err != nil {
		return nil, err
	}
	data, ok, err := pickle.AsBytes(dataV)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, convert.Invalidf("numpy structured array data is not bytes")
	}
	a := &array{shape: shape, fortran: fortran, itemSize: s.itemSize, st: s, data: sized(data)}
	return a, a.checkLen(data.Len())
}

// sized gives a *pickle.Bytes its length as a SizedReaderAt.
func sized(b *pickle.Bytes) convert.SizedReaderAt {
	return sizedAt{b.ReaderAt(), b.Len()}
}

type sizedAt struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int64
}

func (s sizedAt) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }
func (s sizedAt) Size() int64                             { return s.n }

// checkLen verifies the data holds exactly numel*itemsize bytes.
func (a *array) checkLen(have int64) error {
	n, err := convert.CheckedNumel(a.shape, int(min(a.itemSize, 1<<30)))
	if err != nil {
		return err
	}
	if want := n * a.itemSize; have != want {
		return convert.Invalidf("numpy array of shape %v needs %d bytes, the file holds %d", a.shape, want, have)
	}
	return nil
}

// describe names an array's dtype for messages.
func describe(a *array) string {
	if a.st != nil {
		return fmt.Sprintf("structured (%d-byte records)", a.itemSize)
	}
	return a.dt.Descr
}
