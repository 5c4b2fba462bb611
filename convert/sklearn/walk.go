// Naming: the decoded object tree is walked from the top-level object, and
// every numeric numpy array or numpy scalar found becomes a tensor named by
// its attribute path (SPEC §4), '.'-joined:
//
//	an estimator's attribute        coef_, intercept_          (the top-level object starts the path)
//	a list or tuple item            coefs_.0, estimators_.2.tree_.values
//	a dict item, by key             vocabulary.7, transformers.num
//	a (name, estimator, ...) tuple  steps.1.coef_              (the estimator stands at the tuple's
//	                                transformers_.0.mean_       index; items after it follow as .2, ...)
//	a structured array's field      tree_.nodes.threshold
//	sklearn.tree._tree.Tree         tree_.n_classes (its constructor argument), tree_.nodes.*, tree_.values
//	KDTree, BallTree state          _tree.data, _tree.idx_array, _tree.node_data.*, _tree.node_bounds
//
// So Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
// gives steps.0.mean_, ..., steps.1.coef_; a forest gives estimators_.<i>.tree_.*;
// an object array of estimators (GradientBoosting's estimators_) is walked by
// index (estimators_.3.0.tree_.values). A file holding several pickles (one
// pickle.dump call after another) names each object's tensors after its
// position: 0.mean_, 1.coef_.
// Plain Python ints and floats (n_iter_ = 12) are not tensors; numpy scalars
// are (0-d). Object, string, complex and datetime arrays, numpy random
// generator state and masked arrays go to Info.Skipped with the reason.
//
// A tensor reachable under several names is exported under each; a container
// that contains itself is walked once per path. The walk is bounded in depth
// (Limits.MaxPickleDepth), in tensors (Limits.MaxTensors) and in the number of
// references it follows, so shared sub-trees cannot make it explode.
package sklearn

import (
	"fmt"
	"strconv"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/pickle/numpyobj"
)

// maxVisits bounds the containers and arrays a walk enters (counting each
// time a shared one is reached again): far more than any real model needs,
// few enough to finish in about a second.
const maxVisits = 2_000_000

// rootName names a file whose top-level object is itself an array.
const rootName = "array"

type walker struct {
	d       *decoder
	lim     convert.Limits
	tensors []convert.Tensor
	layouts []*layout
	skipped []convert.Skipped
	onPath  map[any]bool
	visits  int
}

// walkable reports whether v may hold an array: plain scalars and strings
// are passed over without building their path.
func walkable(v any) bool {
	if _, ok := v.(*array); ok {
		return true
	}
	return pickle.IsContainer(v)
}

func (w *walker) walk(v any, path, owner string, depth int) error {
	w.visits++
	if w.visits > maxVisits {
		return convert.Invalidf("the pickle's object graph is too large to walk (more than %d references)", maxVisits)
	}
	if depth > w.lim.MaxPickleDepth {
		return convert.Invalidf("objects nested deeper than %d at %q", w.lim.MaxPickleDepth, clip(path))
	}
	if pickle.IsContainer(v) {
		if w.onPath[v] {
			return nil
		}
		w.onPath[v] = true
		defer delete(w.onPath, v)
	}
	a, ok, err := w.d.arrayOf(v)
	if err != nil {
		return fmt.Errorf("%s: %w", display(path), err)
	}
	if ok {
		return w.array(a, path, owner, depth)
	}
	switch v := v.(type) {
	case *pickle.Dict:
		return w.dict(v, path, owner, depth)
	case *pickle.List:
		return w.items(v.Items, 0, path, owner, depth)
	case *pickle.Tuple:
		if len(v.Items) >= 2 && estimatorish(v.Items[1]) {
			if _, named := v.Items[0].(string); named {
				// (name, estimator, columns...): the estimator stands for the tuple
				if err := w.walk(v.Items[1], path, owner, depth+1); err != nil {
					return err
				}
				return w.items(v.Items[2:], 2, path, owner, depth)
			}
		}
		return w.items(v.Items, 0, path, owner, depth)
	case *pickle.Object:
		return w.object(v, path, owner, depth)
	}
	return nil // sets are unordered: nothing to name their items by
}

func (w *walker) dict(d *pickle.Dict, path, owner string, depth int) error {
	for _, it := range d.Items {
		if !walkable(it.Value) {
			continue
		}
		if err := w.walk(it.Value, pickle.JoinPath(path, pickle.KeyString(it.Key)), owner, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) items(items []any, first int, path, owner string, depth int) error {
	for i, x := range items {
		if !walkable(x) {
			continue
		}
		if err := w.walk(x, pickle.JoinPath(path, strconv.Itoa(first+i)), owner, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// binaryTreeState names the items of the tuple KDTree and BallTree pickle as
// their state (sklearn/neighbors/_binary_tree.pxi, BinaryTree.__getstate__;
// sample_weight since 1.0).
var binaryTreeState = []string{"data", "idx_array", "node_data", "node_bounds", "leaf_size", "n_levels",
	"n_nodes", "n_trims", "n_leaves", "n_splits", "n_calls", "dist_metric", "sample_weight"}

// dictClasses are dict subclasses pickled by REDUCE + SETITEMS.
var dictClasses = map[string]bool{
	"collections.OrderedDict": true, "collections.defaultdict": true, "collections.Counter": true,
	"builtins.dict": true, "sklearn.utils.Bunch": true, "sklearn.utils._bunch.Bunch": true,
}

// estimatorish reports whether v is an instance walked by its attributes
// (an estimator, a transformer), as opposed to an array, a number, a string
// or a container.
func estimatorish(v any) bool {
	o, ok := v.(*pickle.Object)
	if !ok {
		return false
	}
	cls := classOf(o)
	full := cls.Module + "." + cls.Name
	switch {
	case o.Items != nil || o.List != nil || dictClasses[full]:
		return false
	case cls.Module == "numpy" || strings.HasPrefix(full, "numpy.core.") || strings.HasPrefix(full, "numpy._core."):
		return false // arrays, scalars, dtypes
	case full == "_codecs.encode" || full == "builtins.bytes" || full == "builtins.bytearray" || full == "builtins.complex":
		return false
	}
	return true
}

func (w *walker) object(o *pickle.Object, path, owner string, depth int) error {
	cls := classOf(o)
	if why := numpyobj.NotExported(cls); why != "" {
		w.skip(path, why)
		return nil
	}
	switch {
	case cls.Is("sklearn.tree._tree", "Tree") && o.Op == pickle.OpReduce && len(o.Args) >= 2:
		// Tree(n_features, n_classes, n_outputs) + BUILD {max_depth, node_count, nodes, values}
		if err := w.walk(o.Args[1], pickle.JoinPath(path, "n_classes"), cls.Name, depth+1); err != nil {
			return err
		}
	}
	if !dictClasses[cls.Module+"."+cls.Name] && o.Items == nil && o.List == nil {
		owner = cls.Name
	}
	if st, ok := o.State.(*pickle.Tuple); ok && (cls.Name == "KDTree" || cls.Name == "BallTree") &&
		strings.HasPrefix(cls.Module, "sklearn.neighbors") && len(st.Items) <= len(binaryTreeState) {
		// BinaryTree.__getstate__'s tuple, named by its fields
		for i, x := range st.Items {
			if walkable(x) {
				if err := w.walk(x, pickle.JoinPath(path, binaryTreeState[i]), owner, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if attrs := o.Attrs(); attrs != nil {
		if err := w.dict(attrs, path, owner, depth); err != nil {
			return err
		}
	} else if o.State != nil {
		if err := w.walk(o.State, path, owner, depth+1); err != nil {
			return err
		}
	}
	if o.Items != nil {
		if err := w.dict(o.Items, path, owner, depth); err != nil {
			return err
		}
	}
	return w.items(o.List, 0, path, owner, depth)
}

func (w *walker) skip(path, reason string) {
	w.skipped = append(w.skipped, convert.Skipped{Name: display(path), Reason: reason})
}

func display(path string) string {
	if path == "" {
		return rootName
	}
	return path
}

// array adds the tensors of one numpy array (one per field when structured).
func (w *walker) array(a *array, path, owner string, depth int) error {
	name := display(path)
	if a.objects != nil && holdsArrays(a.objects) {
		return w.objectArray(a, path, owner, depth)
	}
	if a.skip != "" {
		w.skip(path, a.skip)
		return nil
	}
	if a.npy != nil {
		if len(w.tensors) >= w.lim.MaxTensors {
			return convert.Invalidf("more than %d tensors", w.lim.MaxTensors)
		}
		w.tensors = append(w.tensors, convert.Tensor{Name: name, LayerType: owner, DType: a.dt.DType, Shape: a.shape})
		w.layouts = append(w.layouts, &layout{npy: a.npy})
		return nil
	}
	count, err := convert.CheckedNumel(a.shape, int(max(a.itemSize, 1)))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if a.data.Size() < count*a.itemSize {
		return convert.Invalidf("%s: array data ends at %d of %d bytes", name, a.data.Size(), count*a.itemSize)
	}
	add := func(tname string, dt numpyobj.DType, off int64, sub []int64) error {
		if len(w.tensors) >= w.lim.MaxTensors {
			return convert.Invalidf("more than %d tensors", w.lim.MaxTensors)
		}
		shape := append(append([]int64{}, a.shape...), sub...)
		if _, err := convert.CheckedNumel(shape, dt.ItemSize); err != nil {
			return fmt.Errorf("%s: %w", tname, err)
		}
		w.tensors = append(w.tensors, convert.Tensor{Name: tname, LayerType: owner, DType: dt.DType, Shape: shape})
		w.layouts = append(w.layouts, &layout{
			region: a.data, count: count, recSize: a.itemSize, fieldOff: off, elem: dt.ItemSize,
			shape: a.shape, sub: sub, fortran: a.fortran, swap: dt.BigEndian, boolean: dt.DType == convert.Bool,
		})
		return nil
	}
	if a.st == nil {
		if int64(a.dt.ItemSize) != a.itemSize {
			return convert.Invalidf("%s: numpy %s item size %d does not match its dtype", name, a.dt.Descr, a.itemSize)
		}
		return add(name, a.dt, 0, nil)
	}
	for _, f := range a.st.fields {
		if err := add(pickle.JoinPath(path, f.name), f.dt, f.offset, f.sub); err != nil {
			return err
		}
	}
	for _, s := range a.st.skipped {
		w.skip(pickle.JoinPath(path, s.Name), s.Reason)
	}
	return nil
}

// holdsArrays reports whether an object array's elements may hold numeric
// arrays (estimators, containers, arrays), as a gradient boosting model's
// estimators_ does, rather than labels or strings.
func holdsArrays(items []any) bool {
	for _, x := range items {
		switch x := x.(type) {
		case *array, *pickle.Dict, *pickle.List, *pickle.Tuple:
			return true
		case *pickle.Object:
			if estimatorish(x) {
				return true
			}
			if _, ok, _ := numpyobj.FromValue(x); ok {
				return true
			}
		}
	}
	return false
}

// objectArray walks an object array's elements, named by their index
// (estimators_.3.0 for element [3, 0]).
func (w *walker) objectArray(a *array, path, owner string, depth int) error {
	if len(a.shape) == 0 {
		return w.walk(a.objects[0], path, owner, depth+1)
	}
	idx := make([]int64, len(a.shape))
	var key strings.Builder
	for _, x := range a.objects {
		if walkable(x) {
			key.Reset()
			for k, i := range idx {
				if k > 0 {
					key.WriteByte('.')
				}
				key.WriteString(strconv.FormatInt(i, 10))
			}
			if err := w.walk(x, pickle.JoinPath(path, key.String()), owner, depth+1); err != nil {
				return err
			}
		}
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < a.shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return nil
}

// clip shortens a path for a message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
