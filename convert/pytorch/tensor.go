// Storages and tensors: what torch's persistent ids and rebuild records mean
// (torch/serialization.py persistent_id, torch/_utils.py _rebuild_*), and the
// check that every view stays inside its storage.

package pytorch

import (
	"fmt"
	"math"
	"math/bits"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
	"ckpt2csv/convert/ziparchive"
)

// storageTypes maps torch's storage classes to element types. An empty
// DType with a reason means tensors of that storage are skipped.
var storageTypes = map[string]struct {
	dtype convert.DType
	size  int
	skip  string
}{
	"FloatStorage":         {convert.Float32, 4, ""},
	"DoubleStorage":        {convert.Float64, 8, ""},
	"HalfStorage":          {convert.Float16, 2, ""},
	"BFloat16Storage":      {convert.BFloat16, 2, ""},
	"LongStorage":          {convert.Int64, 8, ""},
	"IntStorage":           {convert.Int32, 4, ""},
	"ShortStorage":         {convert.Int16, 2, ""},
	"CharStorage":          {convert.Int8, 1, ""},
	"ByteStorage":          {convert.Uint8, 1, ""},
	"BoolStorage":          {convert.Bool, 1, ""},
	"UntypedStorage":       {convert.Uint8, 1, ""},
	"ComplexFloatStorage":  {"", 8, "complex64 is not exported"},
	"ComplexDoubleStorage": {"", 16, "complex128 is not exported"},
	"ComplexHalfStorage":   {"", 4, "complex32 is not exported"},
	"QInt8Storage":         {"", 1, "quantized tensor (qint8) is not exported"},
	"QUInt8Storage":        {"", 1, "quantized tensor (quint8) is not exported"},
	"QInt32Storage":        {"", 4, "quantized tensor (qint32) is not exported"},
	"QUInt4x2Storage":      {"", 1, "quantized tensor (quint4x2) is not exported"},
	"QUInt2x4Storage":      {"", 1, "quantized tensor (quint2x4) is not exported"},
}

// dtypes maps torch dtype objects (torch.float32, ...) to element types.
var dtypes = map[string]struct {
	dtype convert.DType
	size  int
	skip  string
}{
	"float32": {convert.Float32, 4, ""}, "float": {convert.Float32, 4, ""},
	"float64": {convert.Float64, 8, ""}, "double": {convert.Float64, 8, ""},
	"float16": {convert.Float16, 2, ""}, "half": {convert.Float16, 2, ""},
	"bfloat16":      {convert.BFloat16, 2, ""},
	"float8_e4m3fn": {convert.Float8E4M3, 1, ""},
	"float8_e5m2":   {convert.Float8E5M2, 1, ""},
	"int64":         {convert.Int64, 8, ""}, "long": {convert.Int64, 8, ""},
	"int32": {convert.Int32, 4, ""}, "int": {convert.Int32, 4, ""},
	"int16": {convert.Int16, 2, ""}, "short": {convert.Int16, 2, ""},
	"int8":            {convert.Int8, 1, ""},
	"uint8":           {convert.Uint8, 1, ""},
	"uint16":          {convert.Uint16, 2, ""},
	"uint32":          {convert.Uint32, 4, ""},
	"uint64":          {convert.Uint64, 8, ""},
	"bool":            {convert.Bool, 1, ""},
	"float8_e4m3fnuz": {"", 1, "float8_e4m3fnuz is not exported"},
	"float8_e5m2fnuz": {"", 1, "float8_e5m2fnuz is not exported"},
	"complex64":       {"", 8, "complex64 is not exported"}, "cfloat": {"", 8, "complex64 is not exported"},
	"complex128": {"", 16, "complex128 is not exported"}, "cdouble": {"", 16, "complex128 is not exported"},
	"complex32": {"", 4, "complex32 is not exported"}, "chalf": {"", 4, "complex32 is not exported"},
	"qint8": {"", 1, "quantized tensor (qint8) is not exported"}, "quint8": {"", 1, "quantized tensor (quint8) is not exported"},
	"qint32": {"", 4, "quantized tensor (qint32) is not exported"}, "quint4x2": {"", 1, "quantized tensor (quint4x2) is not exported"},
}

// storage is one torch storage: a run of elements in an archive member or
// in a legacy file.
type storage struct {
	key      string
	dtype    convert.DType // "" when skip is set
	itemsize int
	skip     string
	numel    int64 // elements, as the persistent id declares

	// where the bytes are (set when the archive or file is indexed)
	member  *ziparchive.Member // zip archives
	off     int64              // legacy: offset of element 0 in the file
	found   bool
	base    *storage // legacy storage views: a window of base starting at baseOff elements
	baseOff int64
}

// tensor is a resolved tensor: a view of a storage, or a numpy array.
type tensor struct {
	st       *storage
	dtype    convert.DType
	itemsize int
	offset   int64 // elements
	shape    []int64
	stride   []int64
	np       *numpyobj.Array
	skip     string
}

// newStorage interprets a storage persistent id:
// ('storage', storage_type, key, location, numel[, view_metadata]).
func (r *reader) newStorage(id any) (any, error) {
	t, ok := id.(*pickle.Tuple)
	if !ok || len(t.Items) < 5 {
		// legacy module source records: ('module', type, source_file, source)
		if ok && len(t.Items) == 4 {
			if s, _ := t.Items[0].(string); s == "module" {
				return t.Items[1], nil
			}
		}
		return nil, convert.Invalidf("pytorch: persistent id %s is not a storage", clip(pickle.Repr(id)))
	}
	if s, _ := t.Items[0].(string); s != "storage" {
		return nil, convert.Invalidf("pytorch: persistent id of kind %s is not supported", clip(pickle.Repr(t.Items[0])))
	}
	g, ok := t.Items[1].(pickle.Global)
	if !ok || g.Module != "torch" {
		return nil, convert.Invalidf("pytorch: storage type %s is not a torch storage class", clip(pickle.Repr(t.Items[1])))
	}
	st, known := storageTypes[g.Name]
	if !known {
		return nil, convert.Invalidf("pytorch: unknown storage type torch.%s", clip(g.Name))
	}
	key, ok := t.Items[2].(string)
	if !ok {
		if n, isInt := t.Items[2].(int64); isInt {
			key = fmt.Sprint(n)
		} else {
			return nil, convert.Invalidf("pytorch: storage key %s is not a string", clip(pickle.Repr(t.Items[2])))
		}
	}
	numel, ok := t.Items[4].(int64)
	if !ok || numel < 0 {
		return nil, convert.Invalidf("pytorch: storage %q has a bad size %s", clip(key), clip(pickle.Repr(t.Items[4])))
	}
	if _, err := convert.CheckedNumel([]int64{numel}, st.size); err != nil {
		return nil, convert.Invalidf("pytorch: storage %q of %d elements is too large", clip(key), numel)
	}
	s := r.storages[key]
	if s == nil {
		if len(r.storages) >= r.lim.MaxTensors {
			return nil, convert.Invalidf("pytorch: more than %d storages", r.lim.MaxTensors)
		}
		s = &storage{key: key, dtype: st.dtype, itemsize: st.size, skip: st.skip, numel: numel}
		r.storages[key] = s
		r.order = append(r.order, s)
	} else if s.dtype != st.dtype || s.itemsize != st.size || s.numel != numel {
		return nil, convert.Invalidf("pytorch: storage %q is declared twice with different types or sizes", clip(key))
	}
	// legacy storage views: (view_key, offset, view_size) into the root storage
	if len(t.Items) >= 6 {
		if vm, ok := t.Items[5].(*pickle.Tuple); ok {
			if len(vm.Items) != 3 {
				return nil, convert.Invalidf("pytorch: storage %q has a bad view record", clip(key))
			}
			vkey, ok1 := vm.Items[0].(string)
			voff, ok2 := vm.Items[1].(int64)
			vsize, ok3 := vm.Items[2].(int64)
			if !ok1 || !ok2 || !ok3 || voff < 0 || vsize < 0 || voff > numel || vsize > numel-voff {
				return nil, convert.Invalidf("pytorch: storage view %q lies outside storage %q", clip(pickle.Repr(vm.Items[0])), clip(key))
			}
			v := r.storages["view:"+vkey]
			if v == nil {
				v = &storage{key: vkey, dtype: s.dtype, itemsize: s.itemsize, skip: s.skip, numel: vsize, base: s, baseOff: voff}
				r.storages["view:"+vkey] = v
			}
			return v, nil
		}
	}
	return s, nil
}

// isRebuild reports whether o is one of torch's tensor rebuild records.
func isRebuild(o *pickle.Object) bool {
	m := o.Class.Module
	return (m == "torch._utils" || m == "torch._tensor" || o.Class.Is("torch.nn.parameter", "Parameter") || o.Class.Is("torch.nn.parameter", "Buffer")) && o.Op == pickle.OpReduce
}

// rebuild resolves a rebuild record to a tensor. depth bounds the wrappers
// (parameters around tensors, _rebuild_from_type around either).
func (r *reader) rebuild(o *pickle.Object, depth int) (*tensor, error) {
	if t, ok := r.tensors[o]; ok {
		return t, nil
	}
	if depth > 8 {
		return nil, convert.Invalidf("pytorch: tensor records nested too deep")
	}
	t, err := r.rebuild1(o.Class, o.Args, depth)
	if err != nil {
		return nil, err
	}
	r.tensors[o] = t
	return t, nil
}

func (r *reader) rebuild1(fn pickle.Global, args []any, depth int) (*tensor, error) {
	arg := func(i int) any {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	inner := func(v any) (*tensor, error) {
		switch v := v.(type) {
		case *pickle.Object:
			if isRebuild(v) {
				return r.rebuild(v, depth+1)
			}
			if a, ok, err := numpyobj.FromValue(v); ok {
				if err != nil {
					return nil, err
				}
				return npTensor(a), nil
			}
		}
		return nil, convert.Invalidf("pytorch: %s of a %s, not a tensor", fn, clip(pickle.Repr(v)))
	}
	switch fn.Module + "." + fn.Name {
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		if len(args) < 4 {
			return nil, convert.Invalidf("pytorch: %s with %d arguments", fn, len(args))
		}
		st, ok := arg(0).(*storage)
		if !ok {
			return nil, convert.Invalidf("pytorch: %s of a %s, not a storage", fn, clip(pickle.Repr(arg(0))))
		}
		return r.view(st, st.dtype, st.itemsize, st.skip, arg(1), arg(2), arg(3))
	case "torch._utils._rebuild_tensor_v3":
		if len(args) < 7 {
			return nil, convert.Invalidf("pytorch: %s with %d arguments", fn, len(args))
		}
		st, ok := arg(0).(*storage)
		if !ok {
			return nil, convert.Invalidf("pytorch: %s of a %s, not a storage", fn, clip(pickle.Repr(arg(0))))
		}
		g, ok := arg(6).(pickle.Global)
		if !ok || g.Module != "torch" {
			return nil, convert.Invalidf("pytorch: %s with dtype %s", fn, clip(pickle.Repr(arg(6))))
		}
		d, known := dtypes[g.Name]
		if !known {
			return nil, convert.Invalidf("pytorch: unknown dtype torch.%s", clip(g.Name))
		}
		if st.itemsize != 1 && st.itemsize != d.size {
			return nil, convert.Invalidf("pytorch: torch.%s tensor on a storage of %d-byte elements", g.Name, st.itemsize)
		}
		skip := d.skip
		if st.skip != "" {
			skip = st.skip
		}
		return r.view(st, d.dtype, d.size, skip, arg(1), arg(2), arg(3))
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
		"torch.nn.parameter.Parameter", "torch.nn.parameter.Buffer":
		if len(args) < 1 {
			return nil, convert.Invalidf("pytorch: %s without data", fn)
		}
		return inner(args[0])
	case "torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2":
		// (func, type, args, state): func(*args) made into a subclass
		f, ok1 := arg(0).(pickle.Global)
		a, ok2 := arg(2).(*pickle.Tuple)
		if !ok1 || !ok2 {
			return nil, convert.Invalidf("pytorch: %s with arguments %s", fn, clip(pickle.Repr(&pickle.Tuple{Items: args})))
		}
		if f.Module != "torch._utils" && f.Module != "torch._tensor" && !f.Is("torch.nn.parameter", "Parameter") {
			return nil, convert.Invalidf("pytorch: %s calls %s, which is not a tensor rebuild function", fn, clip(f.String()))
		}
		if depth > 8 {
			return nil, convert.Invalidf("pytorch: tensor records nested too deep")
		}
		return r.rebuild1(f, a.Items, depth+1)
	case "torch._utils._rebuild_device_tensor_from_numpy":
		return inner(arg(0))
	case "torch._utils._rebuild_qtensor":
		return &tensor{skip: "quantized tensor is not exported"}, nil
	case "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr_tensor":
		return &tensor{skip: "sparse tensor is not exported"}, nil
	case "torch._utils._rebuild_meta_tensor_no_storage":
		return &tensor{skip: "meta tensor has no data"}, nil
	case "torch._utils._rebuild_nested_tensor":
		return &tensor{skip: "nested tensor is not exported"}, nil
	case "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_xla_tensor", "torch._utils._rebuild_mlc_tensor":
		return &tensor{skip: fmt.Sprintf("tensor rebuilt by %s is not exported", fn)}, nil
	}
	return nil, convert.Invalidf("pytorch: %s is not a tensor rebuild function", clip(fn.String()))
}

func npTensor(a *numpyobj.Array) *tensor {
	return &tensor{np: a, dtype: a.DType.DType, itemsize: a.ItemSize, shape: a.Shape, skip: a.Skip}
}

// view builds a tensor over st and checks it stays inside the storage.
func (r *reader) view(st *storage, dtype convert.DType, itemsize int, skip string, offArg, sizeArg, strideArg any) (*tensor, error) {
	off, ok := offArg.(int64)
	if !ok || off < 0 {
		return nil, convert.Invalidf("pytorch: storage %q: bad storage offset %s", clip(st.key), clip(pickle.Repr(offArg)))
	}
	shape, err := ints(sizeArg, "size")
	if err != nil {
		return nil, err
	}
	stride, err := ints(strideArg, "stride")
	if err != nil {
		return nil, err
	}
	if len(stride) != len(shape) {
		return nil, convert.Invalidf("pytorch: tensor of size %v has strides %v", shape, stride)
	}
	numel, err := convert.CheckedNumel(shape, itemsize)
	if err != nil {
		return nil, convert.Invalidf("pytorch: storage %q: %v", clip(st.key), err)
	}
	t := &tensor{st: st, dtype: dtype, itemsize: itemsize, offset: off, shape: shape, stride: stride, skip: skip}
	// capacity in elements of this tensor's dtype
	capacity := st.numel
	if st.itemsize != itemsize {
		capacity = st.numel * int64(st.itemsize) / int64(itemsize)
	}
	if err := checkView(shape, stride, off, numel, capacity); err != nil {
		return nil, convert.Invalidf("pytorch: storage %q: %v", clip(st.key), err)
	}
	// A stride-0 view (expand) can repeat one element 2^62 times inside its
	// storage; beyond 1 GiB, more than 1024 times the storage is refused.
	if numel*int64(itemsize) > 1<<30 && numel/1024 > capacity {
		return nil, convert.Invalidf("pytorch: storage %q: a view of size %v (%d elements) expands a storage of %d elements", clip(st.key), shape, numel, capacity)
	}
	return t, nil
}

// checkView verifies that every element of the view lies in [0, capacity).
func checkView(shape, stride []int64, off, numel, capacity int64) error {
	if numel == 0 {
		return nil
	}
	last := uint64(off)
	for k, d := range shape {
		s := stride[k]
		if s < 0 {
			return fmt.Errorf("negative stride %d", s)
		}
		hi, lo := bits.Mul64(uint64(d-1), uint64(s))
		if hi != 0 || lo > math.MaxInt64 {
			return fmt.Errorf("a view of size %v with strides %v overflows", shape, stride)
		}
		var carry uint64
		last, carry = bits.Add64(last, lo, 0)
		if carry != 0 || last > math.MaxInt64 {
			return fmt.Errorf("a view of size %v with strides %v overflows", shape, stride)
		}
	}
	if int64(last) >= capacity {
		return fmt.Errorf("a view of size %v, strides %v, offset %d reaches element %d, past the end of its storage of %d elements", shape, stride, off, last, capacity)
	}
	return nil
}

// ints reads a size or stride: a tuple (or torch.Size) of non-negative ints.
func ints(v any, what string) ([]int64, error) {
	if o, ok := v.(*pickle.Object); ok && o.Class.Is("torch", "Size") && len(o.Args) == 1 {
		v = o.Args[0]
	}
	items, ok := pickle.AsList(v)
	if !ok {
		return nil, convert.Invalidf("pytorch: tensor %s is a %s, not a tuple", what, clip(pickle.Repr(v)))
	}
	if len(items) > convert.MaxRank {
		return nil, convert.Invalidf("pytorch: tensor rank %d exceeds the limit of %d", len(items), convert.MaxRank)
	}
	out := make([]int64, len(items))
	for i, x := range items {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, convert.Invalidf("pytorch: tensor %s has a bad entry %s", what, clip(pickle.Repr(x)))
		}
		out[i] = n
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
