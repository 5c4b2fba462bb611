// Legacy Keras HDF5 (keras/saving/hdf5_format.py and its tf.keras and
// Keras 3 legacy_h5_format copies): weights listed by the layer_names and
// weight_names attributes, in that order, not in the HDF5 walk order.
package keras

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/keras/internal/hdf5"
)

// attrList reads a name-list attribute the way load_attributes_from_hdf5_group
// does: NAME, or NAME0, NAME1, ... when Keras split it past the 64 KB
// attribute limit. A scalar string counts as a one-element list.
func attrList(o *hdf5.Object, name string, lim convert.Limits) (list []string, present bool, err error) {
	attrs, err := o.Attributes()
	if err != nil {
		return nil, false, err
	}
	byName := make(map[string]*hdf5.Attribute, len(attrs))
	for _, a := range attrs {
		byName[a.Name] = a
	}
	var parts []*hdf5.Attribute
	if a := byName[name]; a != nil {
		parts = append(parts, a)
	} else {
		for i := 0; ; i++ {
			a := byName[name+strconv.Itoa(i)]
			if a == nil {
				break
			}
			parts = append(parts, a)
		}
	}
	if len(parts) == 0 {
		return nil, false, nil
	}
	total := 0
	for _, a := range parts {
		s, err := a.Strings()
		if err != nil {
			return nil, true, err
		}
		for _, v := range s {
			total += len(v)
		}
		if int64(total) > lim.MaxHeaderBytes || len(list)+len(s) > lim.MaxTensors {
			return nil, true, convert.Invalidf("attribute %s is over the limit of %d names / %d bytes", name, lim.MaxTensors, lim.MaxHeaderBytes)
		}
		list = append(list, s...)
	}
	return list, true, nil
}

func hasAttrList(o *hdf5.Object, name string) (bool, error) {
	attrs, err := o.Attributes()
	if err != nil {
		return false, err
	}
	for _, a := range attrs {
		if a.Name == name || a.Name == name+"0" {
			return true, nil
		}
	}
	return false, nil
}

// textAttr returns a text attribute's value, or "" when it is absent or not text.
func textAttr(o *hdf5.Object, name string) string {
	a, err := o.Attr(name)
	if err != nil || a == nil || !a.IsText() {
		return ""
	}
	s, err := a.Text()
	if err != nil {
		return ""
	}
	return s
}

// legacy reads a model.save file (wg is the model_weights group) or a
// save_weights file (wg is the root).
func (b *builder) legacy(root, wg *hdf5.Object, full bool) error {
	meta := b.ck.info.Metadata
	prefix := ""
	if full {
		prefix = "model_weights/"
		meta["layout"] = "keras-h5-model"
	} else {
		meta["layout"] = "keras-h5-weights"
	}
	for _, k := range []string{"keras_version", "backend"} {
		v := textAttr(root, k)
		if v == "" {
			v = textAttr(wg, k)
		}
		if v != "" {
			meta[k] = v
		}
	}
	classes := map[string]string{}
	optClass := ""
	if full {
		if s := textAttr(root, "model_config"); s != "" && int64(len(s)) <= b.lim.MaxHeaderBytes {
			var cfg map[string]any
			if json.Unmarshal([]byte(s), &cfg) == nil {
				if c, ok := cfg["class_name"].(string); ok {
					meta["model_class"] = c
				}
				layerClasses(cfg, classes, 0)
			}
		}
		if s := textAttr(root, "training_config"); s != "" && int64(len(s)) <= b.lim.MaxHeaderBytes {
			var tc map[string]any
			if json.Unmarshal([]byte(s), &tc) == nil {
				optClass = className(tc["optimizer_config"])
				if optClass != "" {
					meta["optimizer_class"] = optClass
				}
			}
		}
	}
	where := "the root group"
	if full {
		where = "model_weights"
	}
	layerNames, ok, err := attrList(wg, "layer_names", b.lim)
	if err != nil {
		return err
	}
	if !ok {
		return convert.Invalidf("%s has no layer_names attribute, so its layers and their order are unknown (not a Keras weights group)", where)
	}
	listed := map[string]bool{}
	for _, ln := range layerNames {
		listed[ln] = true
	}
	if !listed["top_level_model_weights"] {
		// Keras 3 and later tf.keras keep the model's own weights here, unlisted.
		if g, err := wg.Child("top_level_model_weights"); err != nil {
			return err
		} else if g != nil {
			layerNames = append(layerNames, "top_level_model_weights")
		}
	}
	for _, ln := range layerNames {
		g, err := wg.Lookup(ln)
		if err != nil {
			return fmt.Errorf("layer %q: %w", ln, err)
		}
		if g == nil || !g.IsGroup() {
			return convert.Invalidf("layer %q is listed in layer_names but %s%s is not a group", ln, prefix, ln)
		}
		names, _, err := attrList(g, "weight_names", b.lim)
		if err != nil {
			return fmt.Errorf("layer %q: %w", ln, err)
		}
		for _, w := range names {
			path := prefix + ln + "/" + w
			ds, err := g.Lookup(w)
			if err != nil {
				return fmt.Errorf("layer %q, weight %q: %w", ln, w, err)
			}
			if ds == nil {
				return convert.Invalidf("layer %q lists weight %q in weight_names but there is no dataset at %s", ln, w, path)
			}
			if err := b.add(w, ln+"/"+w, weightClass(w, ln, classes), ds, path); err != nil {
				return err
			}
		}
	}
	if !full {
		return nil
	}
	og, err := root.Child("optimizer_weights")
	if err != nil || og == nil || !og.IsGroup() {
		return err
	}
	names, ok, err := attrList(og, "weight_names", b.lim)
	if err != nil {
		return fmt.Errorf("optimizer_weights: %w", err)
	}
	if !ok {
		return convert.Invalidf("optimizer_weights has no weight_names attribute, so its weights and their order are unknown")
	}
	for _, w := range names {
		path := "optimizer_weights/" + w
		ds, err := og.Lookup(w)
		if err != nil {
			return fmt.Errorf("optimizer weight %q: %w", w, err)
		}
		if ds == nil {
			return convert.Invalidf("optimizer_weights lists weight %q in weight_names but there is no dataset at %s", w, path)
		}
		if err := b.add(w, path, optClass, ds, path); err != nil {
			return err
		}
	}
	return nil
}

// weightClass finds the config class of the layer owning weight w of the
// layer group ln: the innermost path element of w's layer part that names a
// layer ("lstm/lstm_cell/kernel:0" -> LSTM), else ln's own class.
func weightClass(w, ln string, classes map[string]string) string {
	layer, _ := convert.SplitName(w, "/")
	parts := strings.Split(layer, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if c, ok := classes[parts[i]]; ok {
			return c
		}
	}
	return classes[ln]
}

// className returns node["class_name"] when node is a {"class_name": ...} object.
func className(node any) string {
	m, ok := node.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m["class_name"].(string)
	return s
}

// layerClasses maps every layer name in a model config to its class_name:
// the model's layers, nested models' layers, and wrapped layers.
func layerClasses(node any, out map[string]string, depth int) {
	m, ok := node.(map[string]any)
	if !ok || depth > 100 {
		return
	}
	cls, _ := m["class_name"].(string)
	switch conf := m["config"].(type) {
	case map[string]any:
		if name, ok := conf["name"].(string); ok && cls != "" {
			if _, seen := out[name]; !seen {
				out[name] = cls
			}
		}
		if ls, ok := conf["layers"].([]any); ok {
			for _, l := range ls {
				layerClasses(l, out, depth+1)
			}
		}
		for _, k := range []string{"layer", "forward_layer", "backward_layer", "cell"} {
			layerClasses(conf[k], out, depth+1)
		}
	case []any: // Keras <= 2.1 Sequential: the config is the list of layers
		for _, l := range conf {
			layerClasses(l, out, depth+1)
		}
	}
}
