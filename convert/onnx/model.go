// The walk over an ONNX ModelProto (onnx.proto, IR versions 3 to 11) that
// finds every tensor and records where its bytes are:
//
//   - graph initializers and sparse initializers, in the main graph and in
//     subgraphs (If/Loop/Scan bodies, training graphs), named by their name;
//   - Constant nodes (value, sparse_value, value_float(s), value_int(s)),
//     named by the node's output;
//   - tensors and numeric lists in node attributes, named
//     "<node name or output>.<attribute>": always for ai.onnx.ml operators
//     (scikit-learn exports keep their coefficients and trees there), and for
//     every node when the model keeps no weights elsewhere (no initializer
//     and no Constant node in any graph).
//
// Field numbers are onnx.proto's. Unknown fields are skipped, so newer models
// still open. Limits: subgraph depth (maxDepth), one string (maxString), all
// kept names and metadata together (Limits.MaxHeaderBytes), tensor count
// (Limits.MaxTensors).

package onnx

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

const (
	maxDepth  = 32      // nested subgraphs
	maxString = 1 << 20 // one name, key or value
	fieldCost = 64      // budget charged per recorded field position
)

type walker struct {
	ctx       context.Context
	ck        *checkpoint
	w         *wire
	lim       convert.Limits
	budget    int64
	meta      map[string]any
	items     []item
	consumers map[string]string // value name -> op_type of its first consumer
	weights   int               // initializers, sparse initializers and Constant nodes seen
}

// item is a tensor found by the walk.
type item struct {
	t        convert.Tensor
	e        *entry
	fallback bool // a standard-domain node attribute: kept only in a model with no other weights
	consumer bool // LayerType is the op_type of the first node that consumes it
}

func (wk *walker) charge(n int64) error {
	wk.budget -= n
	if wk.budget < 0 {
		return convert.Invalidf("model names and metadata exceed the limit of %d bytes", wk.lim.MaxHeaderBytes)
	}
	return nil
}

// each walks the fields of the message f holds, then leaves pos after f.
func (wk *walker) each(f field, fn func(g field) error) error {
	if err := wk.ctx.Err(); err != nil {
		return err
	}
	end := f.off + f.n
	wk.w.pos = f.off
	for wk.w.pos < end {
		g, err := wk.w.next(end)
		if err != nil {
			return err
		}
		if err := fn(g); err != nil {
			return err
		}
	}
	wk.w.pos = f.end
	return nil
}

func (wk *walker) str(f field, what string) (string, error) {
	if err := f.want(protowire.BytesType, what); err != nil {
		return "", err
	}
	if f.n > maxString {
		return "", convert.Invalidf("%s at byte %d is %d bytes long, over the limit of %d", what, f.at, f.n, maxString)
	}
	if err := wk.charge(f.n); err != nil {
		return "", err
	}
	b, err := wk.w.bytesAt(f.off, f.n)
	if err != nil {
		return "", err
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

func (wk *walker) add(it item) error {
	if len(wk.items) >= wk.lim.MaxTensors {
		return convert.Invalidf("more than %d tensors", wk.lim.MaxTensors)
	}
	if it.t.Name == "" { // onnx.checker refuses these, but a name is needed downstream
		it.t.Name = fmt.Sprintf("unnamed_%d", len(wk.items))
	}
	wk.items = append(wk.items, it)
	return nil
}

func (wk *walker) skip(name, reason string) {
	wk.ck.info.Skipped = append(wk.ck.info.Skipped, convert.Skipped{Name: name, Reason: reason})
}

// model walks the ModelProto that is the whole file.
func (wk *walker) model() error {
	var opsets []map[string]any
	props := map[string]string{}
	whole := field{off: 0, n: wk.w.size, end: wk.w.size}
	err := wk.each(whole, func(f field) error {
		var err error
		switch f.num {
		case 1:
			if err = f.want(protowire.VarintType, "ir_version"); err == nil {
				wk.meta["ir_version"] = int64(f.v)
			}
		case 2, 3, 4:
			key := map[protowire.Number]string{2: "producer_name", 3: "producer_version", 4: "domain"}[f.num]
			var s string
			if s, err = wk.str(f, key); err == nil && s != "" {
				wk.meta[key] = s
			}
		case 5:
			if err = f.want(protowire.VarintType, "model_version"); err == nil {
				wk.meta["model_version"] = int64(f.v)
			}
		case 7:
			if err = f.want(protowire.BytesType, "graph"); err == nil {
				err = wk.graph(f, 0)
			}
		case 8:
			var op map[string]any
			if op, err = wk.opset(f); err == nil {
				opsets = append(opsets, op)
			}
		case 14:
			var k, v string
			if k, v, err = wk.keyValue(f, "metadata_props"); err == nil {
				props[k] = v
			}
		case 20: // TrainingInfoProto: initialization = 1, algorithm = 2
			if err = f.want(protowire.BytesType, "training_info"); err == nil {
				err = wk.each(f, func(g field) error {
					if g.num == 1 || g.num == 2 {
						if err := g.want(protowire.BytesType, "training graph"); err != nil {
							return err
						}
						return wk.graph(g, 1)
					}
					return nil
				})
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, ok := wk.meta["ir_version"]; !ok {
		return convert.Invalidf("not an ONNX model: no ir_version")
	}
	if len(opsets) > 0 {
		wk.meta["opset_import"] = opsets
	}
	if len(props) > 0 {
		wk.meta["metadata_props"] = props
	}
	return nil
}

func (wk *walker) opset(f field) (map[string]any, error) {
	if err := f.want(protowire.BytesType, "opset_import"); err != nil {
		return nil, err
	}
	op := map[string]any{"domain": ""}
	err := wk.each(f, func(g field) error {
		switch g.num {
		case 1:
			s, err := wk.str(g, "opset domain")
			op["domain"] = s
			return err
		case 2:
			op["version"] = int64(g.v)
			return g.want(protowire.VarintType, "opset version")
		}
		return nil
	})
	return op, err
}

// keyValue reads a StringStringEntryProto (key = 1, value = 2).
func (wk *walker) keyValue(f field, what string) (k, v string, err error) {
	if err := f.want(protowire.BytesType, what); err != nil {
		return "", "", err
	}
	err = wk.each(f, func(g field) error {
		var err error
		switch g.num {
		case 1:
			k, err = wk.str(g, what+" key")
		case 2:
			v, err = wk.str(g, what+" value")
		}
		return err
	})
	return k, v, err
}

// graph walks a GraphProto: node = 1, name = 2, initializer = 5, sparse_initializer = 15.
func (wk *walker) graph(f field, depth int) error {
	if depth > maxDepth {
		return convert.Invalidf("subgraphs nested deeper than %d levels", maxDepth)
	}
	nodes := 0
	return wk.each(f, func(g field) error {
		switch g.num {
		case 1:
			if err := g.want(protowire.BytesType, "node"); err != nil {
				return err
			}
			nodes++
			return wk.node(g, depth, nodes-1)
		case 2:
			if depth == 0 {
				s, err := wk.str(g, "graph name")
				if s != "" {
					wk.meta["graph_name"] = s
				}
				return err
			}
		case 5:
			if err := g.want(protowire.BytesType, "initializer"); err != nil {
				return err
			}
			wk.weights++
			tp, err := wk.tensorProto(g)
			if err != nil {
				return err
			}
			return wk.addDense(tp, tp.name, "", false)
		case 15:
			if err := g.want(protowire.BytesType, "sparse_initializer"); err != nil {
				return err
			}
			wk.weights++
			return wk.addSparse(g, "", "", false)
		}
		return nil
	})
}

// attr is what the walk keeps of one AttributeProto.
type attr struct {
	msg            field
	name           string
	f, i, t, s, sp *field
	floats, ints   int64 // list lengths
	hasFloats      bool
	hasInts        bool
	strings        int64
	tensors        []field
	graphs         []field
	sparses        []field
}

// node walks a NodeProto: input = 1, output = 2, name = 3, op_type = 4,
// attribute = 5, domain = 7. Attributes are handled once the whole node is
// read, since the output that names a Constant may come after them.
func (wk *walker) node(f field, depth, index int) error {
	var name, op, domain string
	var inputs, outputs []string
	var attrs []attr
	err := wk.each(f, func(g field) error {
		var err error
		var s string
		switch g.num {
		case 1:
			if s, err = wk.str(g, "node input"); err == nil {
				inputs = append(inputs, s)
			}
		case 2:
			if s, err = wk.str(g, "node output"); err == nil {
				outputs = append(outputs, s)
			}
		case 3:
			name, err = wk.str(g, "node name")
		case 4:
			op, err = wk.str(g, "op_type")
		case 7:
			domain, err = wk.str(g, "node domain")
		case 5:
			var a attr
			if a, err = wk.attribute(g); err == nil {
				attrs = append(attrs, a)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if _, ok := wk.consumers[in]; !ok && in != "" {
			wk.consumers[in] = op
		}
	}
	for _, a := range attrs {
		for _, g := range a.graphs {
			if err := wk.graph(g, depth+1); err != nil {
				return err
			}
		}
	}
	if op == "Constant" && (domain == "" || domain == "ai.onnx") {
		out := name
		if len(outputs) > 0 && outputs[0] != "" {
			out = outputs[0]
		}
		wk.weights++
		return wk.constant(out, attrs)
	}
	base := name
	if base == "" && len(outputs) > 0 {
		base = outputs[0]
	}
	if base == "" {
		base = fmt.Sprintf("%s_%d", op, index)
	}
	return wk.harvest(base, op, domain == "ai.onnx.ml", attrs)
}

// attribute walks an AttributeProto: name = 1, f = 2, i = 3, s = 4, t = 5,
// g = 6, floats = 7, ints = 8, strings = 9, tensors = 10, graphs = 11,
// sparse_tensor = 22, sparse_tensors = 23. The type field (20) is not needed:
// what is present says it.
func (wk *walker) attribute(f field) (attr, error) {
	a := attr{msg: f}
	err := wk.each(f, func(g field) error {
		var err error
		switch g.num {
		case 1:
			a.name, err = wk.str(g, "attribute name")
		case 2:
			err = g.want(protowire.Fixed32Type, "attribute f")
			a.f = &g
		case 3:
			err = g.want(protowire.VarintType, "attribute i")
			a.i = &g
		case 4:
			err = g.want(protowire.BytesType, "attribute s")
			a.s = &g
		case 5:
			err = g.want(protowire.BytesType, "attribute t")
			a.t = &g
		case 6:
			err = g.want(protowire.BytesType, "attribute g")
			a.graphs = append(a.graphs, g)
		case 22:
			err = g.want(protowire.BytesType, "attribute sparse_tensor")
			a.sp = &g
		case 7:
			var n int64
			n, err = wk.elements(g, protowire.Fixed32Type, "attribute floats")
			a.floats += n
			a.hasFloats = true
		case 8:
			var n int64
			n, err = wk.elements(g, protowire.VarintType, "attribute ints")
			a.ints += n
			a.hasInts = true
		case 9:
			a.strings++
		case 10:
			err = g.want(protowire.BytesType, "attribute tensors")
			a.tensors = append(a.tensors, g)
		case 11:
			err = g.want(protowire.BytesType, "attribute graphs")
			a.graphs = append(a.graphs, g)
		case 23:
			err = g.want(protowire.BytesType, "attribute sparse_tensors")
			a.sparses = append(a.sparses, g)
		default:
			return nil
		}
		if err == nil && g.num >= 5 {
			err = wk.charge(fieldCost)
		}
		return err
	})
	return a, err
}

// elements counts the values one occurrence of a repeated numeric field
// carries: one when unpacked, all of its payload when packed.
func (wk *walker) elements(g field, elem protowire.Type, what string) (int64, error) {
	if g.typ == elem {
		return 1, nil
	}
	if g.typ != protowire.BytesType {
		return 0, g.want(elem, what)
	}
	switch elem {
	case protowire.Fixed32Type, protowire.Fixed64Type:
		size := int64(4)
		if elem == protowire.Fixed64Type {
			size = 8
		}
		if g.n%size != 0 {
			return 0, convert.Invalidf("malformed protobuf: packed %s at byte %d is %d bytes, not a multiple of %d", what, g.at, g.n, size)
		}
		return g.n / size, nil
	}
	n, err := wk.w.countVarints(g.off, g.n)
	wk.w.pos = g.end
	return n, err
}

// constant adds the value of a Constant node, named by its output.
func (wk *walker) constant(name string, attrs []attr) error {
	for _, a := range attrs {
		var err error
		switch a.name {
		case "value":
			if a.t != nil {
				var tp *tensorProto
				if tp, err = wk.tensorProto(*a.t); err == nil {
					err = wk.addDense(tp, name, "", false)
				}
			}
		case "sparse_value":
			if a.sp != nil {
				err = wk.addSparse(*a.sp, name, "", false)
			}
		case "value_float":
			if a.f != nil {
				err = wk.addScalar(name, typeFloat, *a.f, "", false)
			}
		case "value_int":
			if a.i != nil {
				err = wk.addScalar(name, typeInt64, *a.i, "", false)
			}
		case "value_floats":
			err = wk.addList(name, typeFloat, a, fieldFloatsAttr, a.floats, "", false)
		case "value_ints":
			err = wk.addList(name, typeInt64, a, fieldIntsAttr, a.ints, "", false)
		case "value_string", "value_strings":
			wk.skip(name, "string constant is not exported")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AttributeProto list fields.
const (
	fieldFloatsAttr protowire.Number = 7
	fieldIntsAttr   protowire.Number = 8
)

// harvest adds the tensors and numeric lists in a node's attributes.
func (wk *walker) harvest(base, op string, ml bool, attrs []attr) error {
	fallback := !ml
	for _, a := range attrs {
		name := base + "." + a.name
		var err error
		switch {
		case a.t != nil:
			var tp *tensorProto
			if tp, err = wk.tensorProto(*a.t); err == nil {
				err = wk.addDense(tp, name, op, fallback)
			}
		case a.sp != nil:
			err = wk.addSparse(*a.sp, name, op, fallback)
		case len(a.tensors) > 0:
			for k, g := range a.tensors {
				var tp *tensorProto
				if tp, err = wk.tensorProto(g); err == nil {
					err = wk.addDense(tp, fmt.Sprintf("%s.%d", name, k), op, fallback)
				}
				if err != nil {
					break
				}
			}
		case len(a.sparses) > 0:
			for k, g := range a.sparses {
				if err = wk.addSparse(g, fmt.Sprintf("%s.%d", name, k), op, fallback); err != nil {
					break
				}
			}
		case a.floats > 0:
			err = wk.addList(name, typeFloat, a, fieldFloatsAttr, a.floats, op, fallback)
		case a.ints > 0:
			err = wk.addList(name, typeInt64, a, fieldIntsAttr, a.ints, op, fallback)
		case a.strings > 0 && ml:
			wk.skip(name, "string attribute is not exported")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addScalar adds a value_float or value_int, kept inline: it is a few bytes.
func (wk *walker) addScalar(name string, et *elemType, f field, op string, fallback bool) error {
	b := make([]byte, 8)
	for k := range b {
		b[k] = byte(f.v >> (8 * k))
	}
	e := &entry{kind: kindInline, typ: et, numel: 1, inline: b[:et.bits/8]}
	return wk.add(item{t: convert.Tensor{Name: name, LayerType: op, DType: et.dtype, Shape: []int64{}}, e: e, fallback: fallback, consumer: op == ""})
}

// addList adds an attribute's floats or ints, streamed later by walking the
// AttributeProto again.
func (wk *walker) addList(name string, et *elemType, a attr, num protowire.Number, n int64, op string, fallback bool) error {
	elem := protowire.VarintType
	if et == typeFloat {
		elem = protowire.Fixed32Type
	}
	e := &entry{kind: kindField, typ: et, numel: n, msgOff: a.msg.off, msgEnd: a.msg.off + a.msg.n, field: num, elem: elem}
	return wk.add(item{t: convert.Tensor{Name: name, LayerType: op, DType: et.dtype, Shape: []int64{n}}, e: e, fallback: fallback, consumer: op == ""})
}

// tensorProto is what the walk keeps of one TensorProto.
type tensorProto struct {
	msg      field
	name     string
	dims     []int64
	dataType int64
	raw      *field
	counts   map[protowire.Number]int64 // values per typed data field
	ext      map[string]string
	location int64
	segment  bool
}

// elemWire is how one unpacked element of each typed data field is encoded.
var elemWire = map[protowire.Number]protowire.Type{
	fieldFloat:  protowire.Fixed32Type,
	fieldInt32:  protowire.VarintType,
	fieldInt64:  protowire.VarintType,
	fieldDouble: protowire.Fixed64Type,
	fieldUint64: protowire.VarintType,
}

// tensorProto walks a TensorProto: dims = 1, data_type = 2, segment = 3,
// float_data = 4, int32_data = 5, string_data = 6, int64_data = 7, name = 8,
// raw_data = 9, double_data = 10, uint64_data = 11, external_data = 13,
// data_location = 14.
func (wk *walker) tensorProto(f field) (*tensorProto, error) {
	if err := wk.charge(fieldCost); err != nil {
		return nil, err
	}
	tp := &tensorProto{msg: f, counts: map[protowire.Number]int64{}}
	err := wk.each(f, func(g field) error {
		var err error
		switch g.num {
		case 1:
			tp.dims, err = wk.dims(g, tp.dims)
		case 2:
			err = g.want(protowire.VarintType, "data_type")
			tp.dataType = int64(int32(g.v))
		case 3:
			tp.segment = true
		case 8:
			tp.name, err = wk.str(g, "tensor name")
		case 9:
			err = g.want(protowire.BytesType, "raw_data")
			tp.raw = &g
		case 13:
			var k, v string
			if k, v, err = wk.keyValue(g, "external_data"); err == nil {
				if tp.ext == nil {
					tp.ext = map[string]string{}
				}
				tp.ext[k] = v
			}
		case 14:
			err = g.want(protowire.VarintType, "data_location")
			tp.location = int64(g.v)
		case fieldString:
			tp.counts[fieldString]++
		case fieldFloat, fieldInt32, fieldInt64, fieldDouble, fieldUint64:
			var n int64
			n, err = wk.elements(g, elemWire[g.num], fmt.Sprintf("tensor data field %d", g.num))
			tp.counts[g.num] += n
		}
		return err
	})
	return tp, err
}

// dims reads repeated int64 dimensions, packed or not.
func (wk *walker) dims(g field, dims []int64) ([]int64, error) {
	if g.typ == protowire.VarintType {
		if len(dims) >= convert.MaxRank {
			return nil, convert.Invalidf("tensor rank exceeds the limit of %d", convert.MaxRank)
		}
		return append(dims, int64(g.v)), nil
	}
	if err := g.want(protowire.BytesType, "dims"); err != nil {
		return nil, err
	}
	end := g.off + g.n
	wk.w.pos = g.off
	for wk.w.pos < end {
		if len(dims) >= convert.MaxRank {
			return nil, convert.Invalidf("tensor rank exceeds the limit of %d", convert.MaxRank)
		}
		v, err := wk.w.varint(end)
		if err != nil {
			return nil, err
		}
		dims = append(dims, int64(v))
	}
	return dims, nil
}
