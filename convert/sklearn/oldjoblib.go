// joblib < 0.10 (scikit-learn <= 0.17 era) kept each array in a file of its
// own beside the pickle (joblib/numpy_pickle_compat.py):
//
//	NDArrayWrapper  {filename: "model.pkl_01.npy", subclass, allow_mmap}
//	                the array saved with np.save: read by convert/numpy
//	ZNDArrayWrapper {filename: "model.pkl_01.npy.z", init_args, state}
//	                (compress=True) the raw array bytes in a "ZF" zlib file,
//	                the ndarray's __reduce__ arguments and state (without
//	                the data) in the pickle
//
// The main file is then a plain pickle, or itself a "ZF" file. File names
// are taken as plain names in the pickle's own folder: a name with a path
// separator or ".." is refused.
package sklearn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
)

// siblingName checks a wrapper's file name.
func siblingName(o *pickle.Object) (string, error) {
	st := o.Attrs()
	v, _ := st.Get("filename")
	name, ok := v.(string)
	if !ok || name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return "", convert.Invalidf("joblib < 0.10 array wrapper with a bad file name %q", clip(fmt.Sprint(v)))
	}
	return name, nil
}

// openSibling opens the array file beside the pickle.
func (d *decoder) openSibling(name string) (convert.Source, error) {
	if d.src == nil {
		return nil, convert.Invalidf("joblib < 0.10 array file %q: no folder to read it from", name)
	}
	sib, err := d.src.Sibling(d.ctx, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, convert.Invalidf("joblib < 0.10 file: its array file %q is missing (it must sit beside the pickle)", name)
		}
		return nil, fmt.Errorf("opening joblib array file %q: %w", name, err)
	}
	return sib, nil
}

// oldWrapper resolves an NDArrayWrapper or ZNDArrayWrapper to its array.
func (d *decoder) oldWrapper(o *pickle.Object, compressed bool) (any, error) {
	name, err := siblingName(o)
	if err != nil {
		return nil, err
	}
	if len(d.closers) >= d.lim.MaxTensors {
		return nil, convert.Invalidf("more than %d joblib array files", d.lim.MaxTensors)
	}
	sib, err := d.openSibling(name)
	if err != nil {
		return nil, err
	}
	if compressed {
		return d.zndArray(o, name, sib)
	}
	head := make([]byte, min(sib.Size(), 4096))
	if _, err := sib.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading joblib array file %q: %w", name, err)
	}
	if bytes.Contains(head, []byte("'descr': '|O'")) {
		return &array{skip: "numpy object arrays are not exported"}, nil
	}
	ck, err := convert.Open(d.ctx, sib, "numpy", d.lim)
	if err != nil {
		if errors.Is(err, convert.ErrInvalid) {
			return nil, convert.Invalidf("joblib array file %q: %v", name, err)
		}
		return nil, fmt.Errorf("joblib array file %q: %w", name, err)
	}
	d.closers = append(d.closers, ck)
	info := ck.Info()
	if len(info.Tensors) != 1 {
		if len(info.Skipped) > 0 {
			return &array{skip: info.Skipped[0].Reason}, nil
		}
		return nil, convert.Invalidf("joblib array file %q holds %d arrays", name, len(info.Tensors))
	}
	t := info.Tensors[0]
	return &array{
		dt:       numpyobj.DType{DType: t.DType, ItemSize: t.DType.Size()},
		shape:    t.Shape,
		itemSize: int64(t.DType.Size()),
		npy:      ck,
	}, nil
}

// zndArray reads a ZNDArrayWrapper: numpy's reduce arguments and state from
// the pickle, the bytes from the zlib "ZF" file, inflated to a temporary file.
func (d *decoder) zndArray(o *pickle.Object, name string, sib convert.Source) (any, error) {
	st := o.Attrs()
	initArgs, _ := st.Get("init_args")
	state, _ := st.Get("state")
	args, ok1 := initArgs.(*pickle.Tuple)
	stt, ok2 := state.(*pickle.Tuple)
	if !ok1 || !ok2 {
		return nil, convert.Invalidf("joblib ZNDArrayWrapper %q without init_args and state tuples", name)
	}
	head := make([]byte, min(sib.Size(), 64))
	if _, err := sib.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading joblib array file %q: %w", name, err)
	}
	if sniffCodec(head) != codecZFile {
		return nil, convert.Invalidf("joblib array file %q is not a joblib zlib file", name)
	}
	tmp, n, err := spool(d.ctx, sib, codecZFile, d.lim)
	if err != nil {
		return nil, fmt.Errorf("joblib array file %q: %w", name, err)
	}
	d.closers = append(d.closers, tmp)
	// Rebuild the record numpy would have: _reconstruct(*init_args) + BUILD(state + (data,)).
	rec := &pickle.Object{
		Op:    pickle.OpReduce,
		Class: pickle.Global{Module: "numpy.core.multiarray", Name: "_reconstruct"},
		Args:  args.Items,
		State: &pickle.Tuple{Items: append(append([]any{}, stt.Items...), &pickle.Bytes{Src: tmp, Off: 0, N: n})},
	}
	a, ok, err := d.arrayOf(rec)
	if err != nil {
		return nil, fmt.Errorf("joblib array file %q: %w", name, err)
	}
	if !ok {
		return nil, convert.Invalidf("joblib array file %q: not an array", name)
	}
	return a, nil
}
