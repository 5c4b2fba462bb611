// Keras 3 weights (keras/src/saving/saving_lib.py, H5IOStore): every
// saveable's variables are datasets "0", "1", ... in a "vars" group at the
// saveable's path. A model's layers sit under <path>/layers/<key>, where the
// key is the layer's class name in snake case, numbered _1, _2, ... among
// layers of the same class in model.layers order (Sequential leaves its
// InputLayer out); other saveables sit under their attribute name
// (optimizer, cell, forward_layer, ...). Keras walks a model's layers first,
// then its attributes sorted by name with private ones ("_x") last.
//
// With a config.json the paths are mapped back to layer names and, for the
// layer classes whose variable order is fixed (varNames), to variable names.
package keras

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/keras/internal/hdf5"
)

// v3node is one group of the weights file.
type v3node struct {
	path     string // slash-separated, "" for the root
	obj      *hdf5.Object
	kids     map[string]*v3node
	vars     *hdf5.Object // the "vars" group, when there is one
	datasets []hdf5.Link  // datasets outside any "vars" group
	nameAttr string       // the vars group's "name" attribute (Keras >= 3.5)
}

// cfgObj is what config.json says about the saveable at one path.
type cfgObj struct {
	display string         // tensor name prefix: layer names joined by '/'
	class   string         // config class_name, the tensors' LayerType
	conf    map[string]any // the layer's config
	names   []string       // variable names in save order, nil when unknown
}

// v3 reads a Keras 3 weights file; cfg is the archive's config.json or nil.
func (b *builder) v3(root *hdf5.Object, cfg map[string]any) error {
	meta := b.ck.info.Metadata
	if _, ok := meta["layout"]; !ok {
		meta["layout"] = "keras3-weights"
	}
	tree, err := b.v3tree(root)
	if err != nil {
		return err
	}
	objs := map[string]*cfgObj{}
	order := map[string][]string{}
	optClass := ""
	if cfg != nil {
		if c := className(cfg); c != "" {
			meta["model_class"] = c
		}
		name := ""
		if conf, ok := cfg["config"].(map[string]any); ok {
			name, _ = conf["name"].(string)
		}
		walkConfig(cfg, "", "", objs, order, 0)
		if r := objs[""]; r != nil {
			r.display = name
		}
		if cc, ok := cfg["compile_config"].(map[string]any); ok {
			switch o := cc["optimizer"].(type) {
			case map[string]any:
				optClass = className(o)
			case string:
				optClass = o
			}
			if optClass != "" {
				meta["optimizer_class"] = optClass
			}
		}
	}
	if objs["optimizer"] == nil {
		objs["optimizer"] = &cfgObj{display: "optimizer", class: optClass}
	}
	return b.v3emit(tree, "", objs, order, 0)
}

// v3tree loads the group tree once, each group at most once.
func (b *builder) v3tree(root *hdf5.Object) (*v3node, error) {
	seen := map[uint64]bool{}
	count := 0
	var load func(obj *hdf5.Object, path string, depth int) (*v3node, error)
	load = func(obj *hdf5.Object, path string, depth int) (*v3node, error) {
		if depth > 64 {
			return nil, convert.Invalidf("HDF5 groups nest more than 64 deep at %s", path)
		}
		seen[obj.Addr] = true
		n := &v3node{path: path, obj: obj, kids: map[string]*v3node{}}
		links, err := obj.Links()
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if l.Soft {
				continue
			}
			count++
			if count > b.lim.MaxTensors+1<<16 {
				return nil, convert.Invalidf("more than %d HDF5 objects", b.lim.MaxTensors+1<<16)
			}
			child, err := obj.Child(l.Name)
			if err != nil {
				return nil, err
			}
			if child == nil {
				continue
			}
			cpath := join(path, l.Name)
			switch {
			case child.IsGroup():
				if seen[child.Addr] {
					continue // a hard link back up the tree, or a second link to a group
				}
				if l.Name == "vars" {
					n.vars = child
					n.nameAttr = textAttr(child, "name")
					seen[child.Addr] = true
					continue
				}
				k, err := load(child, cpath, depth+1)
				if err != nil {
					return nil, err
				}
				n.kids[l.Name] = k
			case child.IsDataset():
				n.datasets = append(n.datasets, l)
			}
		}
		return n, nil
	}
	return load(root, "", 0)
}

// v3emit lists a node's variables, then its children in Keras's save
// order. cpath is the node's path in the config's terms: the same as the
// file's for Keras 3; for Keras 2.13-2.15 files, whose model layers sit
// under "_layer_checkpoint_dependencies" with other numbering, the matching
// config layer's path.
func (b *builder) v3emit(n *v3node, cpath string, objs map[string]*cfgObj, order map[string][]string, depth int) error {
	co := objs[cpath]
	display := fallbackDisplay(n)
	class := ""
	if co != nil {
		display, class = co.display, co.class
	}
	if n.vars != nil {
		links, err := n.vars.Links()
		if err != nil {
			return err
		}
		var keys []string
		for _, l := range links {
			if !l.Soft {
				keys = append(keys, l.Name)
			}
		}
		sort.Slice(keys, func(i, j int) bool { return numericLess(keys[i], keys[j]) })
		var names []string
		if co != nil && len(co.names) == len(keys) && sequential(keys) {
			names = co.names
		}
		for i, k := range keys {
			obj, err := n.vars.Child(k)
			if err != nil {
				return err
			}
			if obj == nil || !obj.IsDataset() {
				continue
			}
			v := "vars/" + k
			if names != nil {
				v = names[i]
			}
			path := join(n.path, "vars/"+k)
			if err := b.add(join(display, v), path, class, obj, path); err != nil {
				return err
			}
		}
	}
	for _, l := range n.datasets {
		obj, err := n.obj.Child(l.Name)
		if err != nil {
			return err
		}
		path := join(n.path, l.Name)
		if err := b.add(join(display, l.Name), path, class, obj, path); err != nil {
			return err
		}
	}
	for _, k := range childOrder(n, cpath, objs, order) {
		if err := b.v3emit(n.kids[k.file], join(cpath, k.config), objs, order, depth+1); err != nil {
			return err
		}
	}
	return nil
}

type childKey struct{ file, config string }

// childOrder is the order Keras saves n's children in: for a saveable
// (a node with vars) its "layers" container first, then attributes sorted
// with private names last; for a container, the config's layer order when
// known, else numeric-aware name order (dense, dense_1, ..., dense_10).
// Each child comes with its key in config terms.
func childOrder(n *v3node, cpath string, objs map[string]*cfgObj, order map[string][]string) []childKey {
	var keys []childKey
	for k := range n.kids {
		ck := k
		if k == "_layer_checkpoint_dependencies" {
			ck = "layers"
		}
		keys = append(keys, childKey{k, ck})
	}
	if known, ok := order[cpath]; ok {
		matchByClass(keys, cpath, known, objs)
		pos := map[string]int{}
		for i, k := range known {
			pos[k] = i
		}
		sort.Slice(keys, func(i, j int) bool {
			pi, iok := pos[keys[i].config]
			pj, jok := pos[keys[j].config]
			switch {
			case iok && jok:
				return pi < pj
			case iok != jok:
				return iok
			}
			return numericLess(keys[i].file, keys[j].file)
		})
		return keys
	}
	if n.vars == nil && n.path != "" {
		sort.Slice(keys, func(i, j int) bool { return numericLess(keys[i].file, keys[j].file) })
		return keys
	}
	rank := func(k string) string {
		switch {
		case k == "layers" || k == "_layer_checkpoint_dependencies":
			return "\x00" + k
		case strings.HasPrefix(k, "_"):
			return "~" + k
		}
		return k
	}
	sort.Slice(keys, func(i, j int) bool { return rank(keys[i].file) < rank(keys[j].file) })
	return keys
}

// matchByClass maps the members of a layers container whose keys are not
// the config's (Keras 2.13-2.15 counted a layer once per entry of
// _layer_checkpoint_dependencies, so numbers skip) to config layers: the
// i-th member of a class in numeric order is the i-th layer of that class.
func matchByClass(keys []childKey, cpath string, known []string, objs map[string]*cfgObj) {
	exact := true
	for _, k := range keys {
		if objs[join(cpath, k.config)] == nil {
			exact = false
		}
	}
	if exact {
		return
	}
	bases := map[string][]string{} // class key -> config keys in order
	for _, k := range known {
		b := keyBase(k, nil)
		bases[b] = append(bases[b], k)
	}
	byBase := map[string][]int{}
	for i, k := range keys {
		b := keyBase(k.file, bases)
		byBase[b] = append(byBase[b], i)
	}
	for b, idx := range byBase {
		sort.Slice(idx, func(i, j int) bool { return numericLess(keys[idx[i]].file, keys[idx[j]].file) })
		for r, i := range idx {
			if r < len(bases[b]) {
				keys[i].config = bases[b][r]
			}
		}
	}
}

// keyBase strips a container key's "_<n>" counter ("dense_2" -> "dense"),
// when the rest is a known class key (or always, when known is nil).
func keyBase(k string, known map[string][]string) string {
	i := strings.LastIndexByte(k, '_')
	if i <= 0 || i == len(k)-1 || digits(k[i+1:]) != len(k)-i-1 {
		return k
	}
	if known != nil {
		if _, ok := known[k[:i]]; !ok {
			return k
		}
	}
	return k[:i]
}

// fallbackDisplay names a node without config: its path without the
// "layers" container elements, a layer's key replaced by the layer name
// Keras records in the vars group's "name" attribute when present.
func fallbackDisplay(n *v3node) string {
	if n.path == "" {
		return n.nameAttr
	}
	parts := strings.Split(n.path, "/")
	var out []string
	for i, p := range parts {
		container := (p == "layers" || p == "_layer_checkpoint_dependencies") && i+1 < len(parts)
		if container {
			continue
		}
		if i == len(parts)-1 && i > 0 && (parts[i-1] == "layers" || parts[i-1] == "_layer_checkpoint_dependencies") && n.nameAttr != "" && !strings.Contains(n.nameAttr, "/") {
			p = n.nameAttr
		}
		out = append(out, p)
	}
	return strings.Join(out, "/")
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "/" + b
}

// numericLess orders names with their digit runs compared as numbers:
// "2" < "10", "dense" < "dense_1" < "dense_10".
func numericLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			i, j := digits(a), digits(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// sequential reports whether keys are exactly "0", "1", ..., "n-1".
func sequential(keys []string) bool {
	for i, k := range keys {
		if k != strconv.Itoa(i) {
			return false
		}
	}
	return true
}

var (
	snakeNonWord = regexp.MustCompile(`[^\p{L}\p{N}_]+`)
	snakeUpper   = regexp.MustCompile(`(.)([A-Z][a-z]+)`)
	snakeLower   = regexp.MustCompile(`([a-z])([A-Z])`)
)

// snakeCase is keras.src.utils.naming.to_snake_case.
func snakeCase(s string) string {
	s = snakeNonWord.ReplaceAllString(s, "")
	s = snakeUpper.ReplaceAllString(s, "${1}_${2}")
	return strings.ToLower(snakeLower.ReplaceAllString(s, "${1}_${2}"))
}

// walkConfig records, for the saveable described by node at path, its
// display name, class and variable names, and recurses into the layers of
// models and the sublayers Keras keeps as attributes.
func walkConfig(node any, path, display string, objs map[string]*cfgObj, order map[string][]string, depth int) {
	m, ok := node.(map[string]any)
	if !ok || depth > 100 {
		return
	}
	cls, _ := m["class_name"].(string)
	conf, _ := m["config"].(map[string]any)
	objs[path] = &cfgObj{display: display, class: cls, conf: conf, names: varNames(cls, conf)}
	if conf == nil {
		return
	}
	if layers, ok := conf["layers"].([]any); ok {
		if cls == "Sequential" && len(layers) > 0 && className(layers[0]) == "InputLayer" {
			layers = layers[1:] // Sequential.layers leaves the InputLayer out
		}
		container := join(path, "layers")
		used := map[string]int{}
		var keys []string
		for _, l := range layers {
			key := snakeCase(className(l))
			if n, seen := used[key]; seen {
				used[key] = n + 1
				key = key + "_" + strconv.Itoa(n+1)
			} else {
				used[key] = 0
			}
			keys = append(keys, key)
			name := key
			if lm, ok := l.(map[string]any); ok {
				if lc, ok := lm["config"].(map[string]any); ok {
					if s, ok := lc["name"].(string); ok && s != "" {
						name = s
					}
				}
			}
			walkConfig(l, join(container, key), join(display, name), objs, order, depth+1)
		}
		order[container] = keys
	}
	switch cls {
	case "LSTM", "GRU", "SimpleRNN":
		objs[join(path, "cell")] = &cfgObj{display: join(display, "cell"), class: cls, conf: conf, names: rnnCellNames(conf)}
	case "Bidirectional":
		fwd := conf["layer"]
		bwd := conf["backward_layer"]
		if bwd == nil {
			bwd = fwd
		}
		walkConfig(fwd, join(path, "forward_layer"), join(display, "forward_layer"), objs, order, depth+1)
		walkConfig(bwd, join(path, "backward_layer"), join(display, "backward_layer"), objs, order, depth+1)
	case "TimeDistributed":
		walkConfig(conf["layer"], join(path, "layer"), join(display, "layer"), objs, order, depth+1)
	case "MultiHeadAttention":
		names := []string{"kernel"}
		if boolOpt(conf, "use_bias", true) {
			names = append(names, "bias")
		}
		for _, k := range []string{"_query_dense", "_key_dense", "_value_dense", "_output_dense"} {
			objs[join(path, k)] = &cfgObj{display: join(display, k), class: cls, conf: conf, names: names}
		}
	}
}

// boolOpt reads a boolean config option with its Keras default.
func boolOpt(conf map[string]any, key string, def bool) bool {
	if v, ok := conf[key].(bool); ok {
		return v
	}
	return def
}

// varNames is the order in which layers of class cls save their variables
// (their save_own_variables, or Layer's default: trainable variables, then
// non-trainable ones, each in creation order). nil when unknown.
func varNames(cls string, conf map[string]any) []string {
	if conf == nil {
		return nil
	}
	opt := func(names []string, key string, def bool, name string) []string {
		if boolOpt(conf, key, def) {
			return append(names, name)
		}
		return names
	}
	switch cls {
	case "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose":
		return opt([]string{"kernel"}, "use_bias", true, "bias")
	case "SeparableConv1D", "SeparableConv2D":
		return opt([]string{"depthwise_kernel", "pointwise_kernel"}, "use_bias", true, "bias")
	case "BatchNormalization":
		n := opt(nil, "scale", true, "gamma")
		n = opt(n, "center", true, "beta")
		return append(n, "moving_mean", "moving_variance")
	case "LayerNormalization", "GroupNormalization":
		if boolOpt(conf, "rms_scaling", false) {
			return []string{"gamma"}
		}
		n := opt(nil, "scale", true, "gamma")
		return opt(n, "center", true, "beta")
	case "Embedding":
		return []string{"embeddings"}
	case "PReLU":
		return []string{"alpha"}
	case "LSTMCell", "GRUCell", "SimpleRNNCell":
		return rnnCellNames(conf)
	}
	return nil
}

func rnnCellNames(conf map[string]any) []string {
	n := []string{"kernel", "recurrent_kernel"}
	if boolOpt(conf, "use_bias", true) {
		n = append(n, "bias")
	}
	return n
}
