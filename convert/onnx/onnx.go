// Package onnx reads ONNX models (onnx.proto ModelProto, IR versions 3 to 11,
// as written by onnx, PyTorch, tf2onnx and skl2onnx) as checkpoints: graph
// initializers, sparse initializers, Constant nodes, subgraph constants and,
// for scikit-learn exports, the weights kept in node attributes.
//
// The model is never read whole: a forward protobuf walk (wire.go) records
// where each tensor's bytes are, and Values streams them with range reads,
// from raw_data, a typed repeated field (packed or not), an external data
// file, or a sparse tensor expanded on the fly. Memory is bounded whatever
// the model's size. Limits are listed in model.go and tensor.go.
package onnx

import (
	"context"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"ckpt2csv/convert"
)

func init() {
	convert.Register(convert.Format{Name: "onnx", Match: Match, Open: Open, Generic: true})
}

// Match recognises a ModelProto: ONNX has no magic, but every writer puts
// ir_version (field 1, a small varint) first, and what follows in the first
// bytes must be well-formed ModelProto fields that fit in the file.
func Match(src convert.Source, head []byte) bool {
	size := src.Size()
	whole := int64(len(head)) >= size
	if len(head) < 2 || head[0] != 0x08 {
		return false
	}
	v, n := protowire.ConsumeVarint(head[1:])
	if n < 0 || v < 1 || v > 100 {
		return false
	}
	pos := int64(1 + n)
	structural := false // producer_name, graph or opset_import seen
	for pos < int64(len(head)) {
		b := head[pos:]
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return !whole && structural
		}
		if want, known := modelFields[num]; known && want != typ {
			return false
		}
		switch typ {
		case protowire.BytesType:
			l, k := protowire.ConsumeVarint(b[n:])
			if k < 0 {
				return !whole && structural
			}
			if num == 2 || num == 7 || num == 8 {
				structural = true
			}
			if l > uint64(size-pos-int64(n+k)) {
				// runs past the end of the file: a truncated model, which
				// Open reports as such, or not a model at all
				return structural
			}
			pos += int64(n+k) + int64(l)
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			if m < 0 {
				return !whole && structural
			}
			pos += int64(n + m)
		default:
			return false
		}
	}
	return structural
}

// modelFields are ModelProto's field numbers and wire types.
var modelFields = map[protowire.Number]protowire.Type{
	1: protowire.VarintType, 2: protowire.BytesType, 3: protowire.BytesType,
	4: protowire.BytesType, 5: protowire.VarintType, 6: protowire.BytesType,
	7: protowire.BytesType, 8: protowire.BytesType, 14: protowire.BytesType,
	20: protowire.BytesType, 25: protowire.BytesType,
}

type checkpoint struct {
	src     convert.Source
	info    convert.Info
	entries []*entry

	mu   sync.Mutex
	ext  map[string]*extFile
	open int // external files held open
}

// Open walks the model and checks every tensor's bytes against its shape.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	c := &checkpoint{src: src, ext: map[string]*extFile{}, info: convert.Info{Format: "onnx"}}
	defer func() {
		if r := recover(); r != nil {
			err = convert.Invalidf("unreadable ONNX model (%v)", r)
		}
		if err != nil {
			c.Close()
		}
	}()
	wk := &walker{
		ctx: ctx, ck: c, w: newWire(src, src.Size()), lim: lim, budget: lim.MaxHeaderBytes,
		meta: map[string]any{}, consumers: map[string]string{},
	}
	if err := wk.model(); err != nil {
		return nil, err
	}
	for _, it := range wk.items {
		if it.fallback && wk.weights > 0 {
			continue
		}
		if it.consumer {
			it.t.LayerType = wk.consumers[it.t.Name]
		}
		c.info.Tensors = append(c.info.Tensors, it.t)
		c.entries = append(c.entries, it.e)
	}
	c.info.Metadata = wk.meta
	return c, nil
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

func (c *checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.ext {
		if f.src != nil {
			closeSource(f.src)
			f.src = nil
		}
	}
	return nil
}

// Values streams tensor i's values (see stream.go).
func (c *checkpoint) Values(ctx context.Context, i int) (rc io.ReadCloser, err error) {
	if i < 0 || i >= len(c.entries) {
		return nil, fmt.Errorf("tensor index %d out of range", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			rc, err = nil, convert.Invalidf("tensor %q: unreadable (%v)", c.info.Tensors[i].Name, r)
		}
	}()
	rc, err = c.values(ctx, c.entries[i])
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", c.info.Tensors[i].Name, err)
	}
	return rc, nil
}
