// Naming: walking the decoded object to the tensors it holds, named as SPEC §4
// says (dict keys and list positions joined with '.'), with modules pickled
// whole (torch.save(model), TorchScript) named as their state_dict names.

package pytorch

import (
	"context"
	"strconv"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
)

// reader holds what one checkpoint's pickles resolve to.
type reader struct {
	ctx      context.Context
	lim      convert.Limits
	storages map[string]*storage
	order    []*storage
	tensors  map[*pickle.Object]*tensor

	named   []named
	skipped []convert.Skipped
	seen    map[any]bool
	onPath  map[any]bool
	visits  int
	// nameBytes sums the names walked, bounded like a header
	nameBytes int64
}

type named struct {
	name      string
	layerType string
	t         *tensor
}

func newReader(ctx context.Context, lim convert.Limits) *reader {
	return &reader{ctx: ctx, lim: lim, storages: map[string]*storage{}, tensors: map[*pickle.Object]*tensor{}, seen: map[any]bool{}}
}

// options are the pickle options for a torch pickle: storages resolved as
// they are met.
func (r *reader) options() pickle.Options {
	return pickle.Options{Limits: r.lim, Persistent: r.newStorage, Context: r.ctx}
}

// moduleInternals are nn.Module attributes that hold bookkeeping, not data.
var moduleInternals = map[string]bool{
	"_parameters": true, "_buffers": true, "_modules": true, "_non_persistent_buffers_set": true,
	"_backward_hooks": true, "_backward_pre_hooks": true, "_forward_hooks": true,
	"_forward_hooks_with_kwargs": true, "_forward_hooks_always_called": true, "_forward_pre_hooks": true,
	"_forward_pre_hooks_with_kwargs": true, "_state_dict_hooks": true, "_state_dict_pre_hooks": true,
	"_load_state_dict_pre_hooks": true, "_load_state_dict_post_hooks": true, "_is_full_backward_hook": true,
	"training": true, "_version": true,
	"_flat_weights": true, // RNN modules: their own parameters again, in cuDNN order
}

// keyString renders a dict key as Python's str() would, a long repr clipped.
func keyString(k any) string {
	s := pickle.KeyString(k)
	if _, ok := k.(string); !ok {
		s = clip(s)
	}
	return s
}

// emit records a tensor under a name.
func (r *reader) emit(name, layerType string, t *tensor) error {
	if t.skip != "" {
		r.skipped = append(r.skipped, convert.Skipped{Name: name, Reason: t.skip})
		return nil
	}
	if len(r.named) >= r.lim.MaxTensors {
		return convert.Invalidf("pytorch: more than %d tensors", r.lim.MaxTensors)
	}
	r.named = append(r.named, named{name: name, layerType: layerType, t: t})
	return nil
}

// asTensor resolves v when it is a tensor, a storage or a numpy array.
func (r *reader) asTensor(v any) (*tensor, bool, error) {
	if st, ok := v.(*storage); ok {
		// a storage saved on its own (torch.save(t.storage())): all its elements, in one dimension
		return &tensor{st: st, dtype: st.dtype, itemsize: st.itemsize, shape: []int64{st.numel}, stride: []int64{1}, skip: st.skip}, true, nil
	}
	o, ok := v.(*pickle.Object)
	if !ok {
		return nil, false, nil
	}
	if isRebuild(o) {
		t, err := r.rebuild(o, 0)
		return t, true, err
	}
	if o.Class.Is("torch.nn.parameter", "UninitializedParameter") || o.Class.Is("torch.nn.parameter", "UninitializedBuffer") {
		return &tensor{skip: "a lazy module's " + o.Class.Name + " has no values until the module first runs"}, true, nil
	}
	if t, ok := r.tensors[o]; ok {
		return t, true, nil
	}
	a, ok, err := numpyobj.FromValue(o)
	if !ok {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	t := npTensor(a)
	r.tensors[o] = t
	return t, true, nil
}

// walk visits v under name. Containers are walked once (a container that
// contains itself, or a list holding one dict twice, terminates); a tensor
// reached under several names is emitted under each.
func (r *reader) walk(v any, name, layerType string, depth int) error {
	if depth > r.lim.MaxPickleDepth {
		return convert.Invalidf("pytorch: checkpoint nested deeper than %d", r.lim.MaxPickleDepth)
	}
	if r.visits++; r.visits > 8*r.lim.MaxTensors {
		return convert.Invalidf("pytorch: checkpoint has too many objects to walk")
	}
	// Names are metadata: a module shared under long keys at every level
	// multiplies them (a 12 KB file named 262,144 tensors with 4.5 KB each).
	if r.nameBytes += int64(len(name)); r.nameBytes > r.lim.MaxHeaderBytes {
		return convert.Invalidf("pytorch: the names of the checkpoint's objects add up to more than %d bytes", r.lim.MaxHeaderBytes)
	}
	t, isTensor, err := r.asTensor(v)
	if err != nil {
		return err
	}
	if isTensor {
		return r.emit(name, layerType, t)
	}
	if !pickle.IsContainer(v) {
		return nil
	}
	if o, ok := v.(*pickle.Object); ok && o.Op == pickle.OpReduce && o.Class.Module == "torch.jit._pickle" && len(o.Args) > 0 {
		// TorchScript's typed wrappers: build_intlist(list), restore_type_tag(value, type)
		return r.walk(o.Args[0], name, layerType, depth+1)
	}
	if r.seen[v] {
		return nil
	}
	r.seen[v] = true
	if d, ok := pickle.AsDict(v); ok {
		for _, it := range d.Items {
			if err := r.walk(it.Value, pickle.JoinPath(name, keyString(it.Key)), "", depth+1); err != nil {
				return err
			}
		}
		if o, isObj := v.(*pickle.Object); isObj && o.Items != nil {
			return r.walkObject(o, name, depth, true)
		}
		return nil
	}
	if items, ok := pickle.AsList(v); ok {
		for i, x := range items {
			if err := r.walk(x, pickle.JoinPath(name, strconv.Itoa(i)), "", depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if o, ok := v.(*pickle.Object); ok {
		if why := numpyobj.NotExported(o.Class); why != "" {
			r.skipped = append(r.skipped, convert.Skipped{Name: name, Reason: why})
			return nil
		}
		return r.walkObject(o, name, depth, false)
	}
	return nil
}

// walkObject walks an instance: a torch.nn.Module pickled whole, a
// TorchScript module, or any other object, through its attributes.
func (r *reader) walkObject(o *pickle.Object, name string, depth int, itemsDone bool) error {
	if r.onPath == nil {
		r.onPath = map[any]bool{}
	}
	r.onPath[o] = true
	defer delete(r.onPath, o)
	attrs := o.Attrs()
	if !itemsDone {
		if o.Items != nil {
			for _, it := range o.Items.Items {
				if err := r.walk(it.Value, pickle.JoinPath(name, keyString(it.Key)), "", depth+1); err != nil {
					return err
				}
			}
		}
		for i, x := range o.List {
			if err := r.walk(x, pickle.JoinPath(name, strconv.Itoa(i)), "", depth+1); err != nil {
				return err
			}
		}
	}
	if attrs == nil {
		return nil
	}
	layer := o.Class.Name
	if i := strings.LastIndexByte(layer, '.'); i >= 0 {
		layer = layer[i+1:]
	}
	params, hasParams := attrs.Get("_parameters")
	buffers, _ := attrs.Get("_buffers")
	modules, hasModules := attrs.Get("_modules")
	if hasParams || hasModules {
		// an nn.Module: state_dict order is own parameters, own buffers, then children
		for _, group := range []any{params, buffers} {
			if d, ok := pickle.AsDict(group); ok {
				for _, it := range d.Items {
					if err := r.walkMember(it.Value, pickle.JoinPath(name, keyString(it.Key)), layer, depth); err != nil {
						return err
					}
				}
			}
		}
		if d, ok := pickle.AsDict(modules); ok {
			for _, it := range d.Items {
				if err := r.walkModule(it.Value, pickle.JoinPath(name, keyString(it.Key)), depth+1); err != nil {
					return err
				}
			}
		}
		// then any other attribute holding tensors
		for _, it := range attrs.Items {
			k, _ := it.Key.(string)
			if moduleInternals[k] {
				continue
			}
			if err := r.walkMember(it.Value, pickle.JoinPath(name, keyString(it.Key)), layer, depth); err != nil {
				return err
			}
		}
		return nil
	}
	// TorchScript modules (__torch__.*) keep parameters, buffers and
	// submodules as plain attributes, in state_dict order.
	torchScript := strings.HasPrefix(o.Class.Module, "__torch__")
	for _, it := range attrs.Items {
		k, _ := it.Key.(string)
		if torchScript && moduleInternals[k] {
			continue
		}
		lt := ""
		if torchScript {
			lt = layer
		}
		if err := r.walkMember(it.Value, pickle.JoinPath(name, keyString(it.Key)), lt, depth); err != nil {
			return err
		}
	}
	return nil
}

// walkMember walks one attribute: a tensor gets the owner's layer type.
func (r *reader) walkMember(v any, name, layerType string, depth int) error {
	t, isTensor, err := r.asTensor(v)
	if err != nil {
		return err
	}
	if isTensor {
		return r.emit(name, layerType, t)
	}
	return r.walk(v, name, "", depth+1)
}

// walkModule walks a submodule. Unlike other containers, a module shared by
// two parents is walked under each name, as state_dict does; a module that
// contains itself is still walked once per path (the ancestors are tracked).
func (r *reader) walkModule(v any, name string, depth int) error {
	o, ok := v.(*pickle.Object)
	if !ok {
		return r.walk(v, name, "", depth)
	}
	if r.onPath[o] {
		return nil // a module inside itself
	}
	delete(r.seen, o)
	return r.walk(o, name, "", depth)
}
