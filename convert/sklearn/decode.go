// Decoding a scikit-learn pickle or joblib file with the restricted reader
// (convert/pickle), and finding its numpy arrays: numpy's own records
// (numpyobj), structured arrays, and joblib's NumpyArrayWrapper, whose array
// bytes follow its BUILD in the stream (joblib/numpy_pickle.py,
// NumpyArrayWrapper.write_array / read_array):
//
//	BUILD {subclass, shape, order, dtype, allow_mmap[, numpy_array_alignment_bytes]}
//	[ 1 byte padding length p, p bytes 0xff ]   only when the alignment key is set (joblib >= 1.2)
//	numel*itemsize bytes, in `order`            (or a protocol-2 pickle for object arrays)
//
// The array bytes are never read here: their offset is recorded and the
// input skipped past them, so Values later streams them with ReadAt.
package sklearn

import (
	"context"
	"fmt"
	"io"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
)

// array is one numpy array of the file, located but not read.
type array struct {
	dt       numpyobj.DType // a plain dtype (when st is nil)
	st       *structured    // a structured dtype
	shape    []int64
	fortran  bool
	itemSize int64
	data     convert.SizedReaderAt // the raw bytes; nil when skip is set
	npy      convert.Checkpoint    // or: a .npy file beside the pickle (joblib < 0.10) streams them
	skip     string                // why the array is not exported
	objects  []any                 // an object array's elements, in C order
}

// isObjectDType reports whether a numpy type string is the object dtype.
func isObjectDType(descr string) bool {
	return strings.HasPrefix(strings.TrimLeft(descr, "<>|=!"), "O")
}

// decoder holds what decoding learns besides the value tree.
type decoder struct {
	ctx      context.Context
	src      convert.Source // the file, for joblib < 0.10 array files beside it
	lim      convert.Limits
	data     convert.SizedReaderAt
	wrappers int         // joblib NumpyArrayWrapper records seen
	aligned  bool        // some had joblib's alignment padding
	numpy2   bool        // numpy 2 module paths (numpy._core) seen
	old      int         // joblib < 0.10 array files read
	closers  []io.Closer // what those array files hold open
	next     int64       // where the last pickle read ended
}

// allowCall accepts the REDUCE callables scikit-learn pickles use beyond the
// default list: its Cython classes' reconstructors (sklearn.tree._tree.Tree,
// SGD loss functions, KDTree's newObj, the _loss module's __pyx_unpickle_*),
// scipy's sparse matrices and frozen distributions, and pandas' index and
// block reconstructors, numpy's random generators (skipped) and old ufunc
// references. Nothing is called; Denied is checked first and wins.
func allowCall(g pickle.Global) bool {
	switch {
	case strings.HasPrefix(g.Module, "sklearn."), strings.HasPrefix(g.Module, "scipy.sparse"),
		strings.HasPrefix(g.Module, "scipy.stats"), strings.HasPrefix(g.Module, "numpy.random"):
		return true
	case g.Name == "_ufunc_reconstruct" && (g.Module == "numpy.core" || g.Module == "numpy._core"):
		return true // a ufunc (FunctionTransformer(np.log1p)) as numpy < 1.20 pickled it
	}
	switch g.Module + "." + g.Name {
	case "pandas.core.indexes.base._new_Index", "pandas._libs.internals._unpickle_block",
		"pandas.core.internals.blocks.new_block", "pandas.core.internals.blocks._unpickle_block",
		"pandas._libs.tslibs.timestamps._unpickle_timestamp", "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
		"pandas.core.arrays.categorical.Categorical", "pandas._libs.tslibs.nattype.__nat_unpickle":
		return true
	}
	return false
}

// classOf is the class an object was made of. Helpers that only call
// cls.__new__ name it in their first argument: copyreg._reconstructor(cls,
// base, state) in protocol 0/1 pickles, and the newObj(cls) of
// scikit-learn's Cython neighbor trees and distance metrics.
func classOf(o *pickle.Object) pickle.Global {
	if o.Class.Is("copyreg", "_reconstructor") || o.Class.Is("copyreg", "__newobj__") || o.Class.Is("copyreg", "__newobj_ex__") ||
		(o.Class.Name == "newObj" && strings.HasPrefix(o.Class.Module, "sklearn.")) {
		if len(o.Args) > 0 {
			if g, ok := o.Args[0].(pickle.Global); ok {
				return g
			}
		}
	}
	return o.Class
}

func isJoblib(g pickle.Global, name string) bool {
	return g.Name == name && (g.Module == "joblib.numpy_pickle" || g.Module == "sklearn.externals.joblib.numpy_pickle" ||
		g.Module == "joblib.numpy_pickle_compat" || g.Module == "sklearn.externals.joblib.numpy_pickle_compat")
}

// maxPickles bounds the pickles read from one file.
const maxPickles = 1000

// decode reads the pickle at the start of data, and the pickles that follow
// it when pickle.dump was called several times on one file (a model, then
// its scaler). Bytes after the last STOP that do not start a protocol 2+
// pickle are ignored, as pickle.load ignores them.
func (d *decoder) decode() ([]any, error) {
	opt := pickle.Options{Limits: d.lim, AllowCall: allowCall, AfterBuild: d.afterBuild, Context: d.ctx}
	dec := pickle.NewDecoderAt(d.data, 0, d.data.Size(), opt)
	var roots []any
	for {
		v, err := dec.Decode()
		if err != nil {
			if len(roots) > 0 {
				return nil, fmt.Errorf("pickle %d of the file (at byte %d): %w", len(roots)+1, d.next, err)
			}
			return nil, err
		}
		roots = append(roots, v)
		d.next = dec.Offset()
		var h [2]byte
		if rem := d.data.Size() - d.next; rem < 4 {
			return roots, nil
		}
		if _, err := d.data.ReadAt(h[:], d.next); err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading after the pickle: %w", err)
		}
		if h[0] != 0x80 || h[1] < 2 || h[1] > 5 {
			return roots, nil
		}
		if len(roots) >= maxPickles {
			return nil, convert.Invalidf("more than %d pickles in one file", maxPickles)
		}
	}
}

// afterBuild replaces each joblib NumpyArrayWrapper by the array that follows it.
func (d *decoder) afterBuild(in *pickle.Input, o *pickle.Object) (any, error) {
	cls := classOf(o)
	if strings.HasPrefix(cls.Module, "numpy._core") {
		d.numpy2 = true
	}
	if isJoblib(cls, "NDArrayWrapper") || isJoblib(cls, "ZNDArrayWrapper") {
		d.old++
		return d.oldWrapper(o, cls.Name == "ZNDArrayWrapper")
	}
	if !isJoblib(cls, "NumpyArrayWrapper") {
		return o, nil
	}
	d.wrappers++
	st := o.Attrs()
	if st == nil {
		return nil, convert.Invalidf("joblib NumpyArrayWrapper without a state dict")
	}
	shapeV, _ := st.Get("shape")
	shape, err := numpyobj.Shape(shapeV)
	if err != nil {
		return nil, convert.Invalidf("joblib array: %v", err)
	}
	order, _ := st.Get("order")
	dtV, _ := st.Get("dtype")
	dt, ok, err := numpyobj.DTypeOf(dtV)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, convert.Invalidf("joblib array without a numpy dtype")
	}
	a := &array{dt: dt, shape: shape, fortran: order == "F", itemSize: itemSize(dtV, dt)}
	if isObjectDType(dt.Descr) {
		// joblib pickles object arrays (protocol 2) right after the wrapper.
		v, err := in.DecodeNested(pickle.Options{Limits: d.lim, AllowCall: allowCall, Context: d.ctx})
		if err != nil {
			return nil, err
		}
		a.skip = dt.Skip
		if inner, ok, err := d.arrayOf(v); err == nil && ok && inner.objects != nil {
			a.objects = inner.objects
		}
		return a, nil
	}
	if isStructured(dtV) {
		if a.st, err = parseStructured(dtV); err != nil {
			return nil, err
		}
		a.itemSize = a.st.itemSize
	}
	if a.itemSize <= 0 || a.itemSize > 1<<30 {
		return nil, convert.Invalidf("joblib array of dtype %s has item size %d", dt.Descr, a.itemSize)
	}
	numel, err := convert.CheckedNumel(shape, int(a.itemSize))
	if err != nil {
		return nil, err
	}
	n := numel * a.itemSize
	if al, ok := st.Get("numpy_array_alignment_bytes"); ok {
		if _, none := al.(pickle.None); !none {
			d.aligned = true
			pad, err := in.ReadByte() // an I/O error stays one; the end of the data is ErrInvalid
			if err != nil {
				return nil, err
			}
			if err := in.Discard(int64(pad)); err != nil {
				return nil, err
			}
		}
	}
	off := in.Offset()
	if rem := in.Remaining(); rem >= 0 && n > rem {
		return nil, convert.Invalidf("joblib array of shape %v (%s, %d bytes) at byte %d runs past the end of the data (%d bytes left)",
			shape, describe(a), n, off, rem)
	}
	if err := in.Discard(n); err != nil {
		return nil, err
	}
	if a.st == nil && dt.Skip != "" {
		a.skip = dt.Skip
		return a, nil
	}
	a.data = sectionAt{d.data, off, n}
	return a, nil
}

// sectionAt is n bytes at off of r.
type sectionAt struct {
	r      convert.SizedReaderAt
	off, n int64
}

func (s sectionAt) Size() int64 { return s.n }

func (s sectionAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.n {
		return 0, convert.Invalidf("read at %d past the %d-byte array", off, s.n)
	}
	short := int64(len(p)) > s.n-off
	if short {
		p = p[:s.n-off]
	}
	k, err := s.r.ReadAt(p, s.off+off)
	if err == io.EOF && k == len(p) {
		err = nil
	}
	if err == nil && short {
		err = convert.Invalidf("read past the %d-byte array", s.n)
	}
	return k, err
}

// arrayOf interprets v as a numpy array or scalar; ok is false when it is neither.
func (d *decoder) arrayOf(v any) (a *array, ok bool, err error) {
	if a, ok := v.(*array); ok {
		return a, true, nil
	}
	o, isObj := v.(*pickle.Object)
	if !isObj {
		return nil, false, nil
	}
	if strings.HasPrefix(o.Class.Module, "numpy._core") {
		d.numpy2 = true
	}
	na, ok, err := numpyobj.FromValue(v)
	if !ok || err != nil {
		return nil, ok, err
	}
	var dtV any
	if o.Class.Name == "_reconstruct" {
		if st, isT := o.State.(*pickle.Tuple); isT && len(st.Items) >= 4 {
			dtV = st.Items[len(st.Items)-3]
		}
	} else if len(o.Args) >= 2 {
		dtV = o.Args[1]
		if o.Class.Name == "scalar" {
			dtV = o.Args[0]
		}
	}
	if na.Skip != "" && isStructured(dtV) && o.Class.Name != "scalar" {
		a, err := structuredArray(o)
		return a, true, err
	}
	a = &array{dt: na.DType, shape: na.Shape, fortran: na.Fortran, itemSize: int64(na.ItemSize)}
	if isObjectDType(na.Descr) && o.Class.Name == "_reconstruct" {
		// the state's data is the list of elements (numpy's _getlist_pkl, C order)
		if st, isT := o.State.(*pickle.Tuple); isT && len(st.Items) >= 4 {
			if l, isL := st.Items[len(st.Items)-1].(*pickle.List); isL {
				if n, err := convert.CheckedNumel(a.shape, 1); err == nil && n == int64(len(l.Items)) {
					a.objects = l.Items
				}
			}
		}
	}
	if na.Skip != "" || na.Data == nil {
		a.skip = na.Skip
		if a.skip == "" {
			a.skip = "numpy array without data"
		}
		return a, true, nil
	}
	a.data = sized(na.Data)
	return a, true, nil
}
