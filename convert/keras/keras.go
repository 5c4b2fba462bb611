// Package keras reads Keras checkpoints:
//
//   - legacy HDF5 (Keras 1/2, tf.keras, Keras 3 legacy): a full model from
//     model.save ("model_weights" group, "optimizer_weights" group, model_config
//     and training_config root attributes) or weights only from save_weights
//     (the same layout at the root). It follows keras/saving/hdf5_format.py
//     (save_weights_to_hdf5_group, save_model_to_hdf5,
//     load_attributes_from_hdf5_group): layers in "layer_names" order, each
//     layer's weights in its "weight_names" order, datasets at
//     <layer>/<weight name>, attributes split as NAME0, NAME1, ... past 64 KB.
//   - Keras 3 (and Keras 2.13-2.15 "v3"): a .keras zip (config.json,
//     metadata.json, model.weights.h5) or a standalone .weights.h5, laid out by
//     keras/src/saving/saving_lib.py: each saveable's variables in
//     <path>/vars/<i>, a model's layers under <path>/layers/<snake_case class
//     name>[_<n>], other saveables under their attribute name.
//
// Tensor names follow SPEC §4: legacy weights by the name Keras lists in
// weight_names ("dense_1/kernel:0"); Keras 3 variables as LAYER/VAR where
// config.json names the variable, else LAYER/vars/I (I in numeric order).
// config.json is only read as data: nothing in it is run or unpickled, and
// Lambda layers' marshalled code is ignored.
//
// HDF5 is read by the package's own reader (internal/hdf5, which says why)
// straight from the source with ReadAt; a deflated model.weights.h5 inside a
// .keras is spooled to a temp file of at most lim.MaxTempBytes that is removed
// when the checkpoint closes or fails to open. Limits: lim.MaxTensors tensors,
// lim.MaxHeaderBytes for config.json and every name list, the zip checks of
// convert/ziparchive, and the structural bounds of internal/hdf5. A panic in
// the reader becomes an ErrInvalid error.
package keras

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/keras/internal/hdf5"
	"ckpt2csv/convert/ziparchive"
)

func init() {
	convert.Register(convert.Format{Name: "keras", Match: match, Open: open})
}

// match recognises HDF5 by its signature (at 0 or after a user block of 512,
// 1024 or 2048 bytes) and a Keras archive by its first member (Keras writes
// metadata.json, config.json, model.weights.h5 in that order) or, failing
// that, by a central directory holding config.json and model.weights.h5 or
// metadata.json.
func match(src convert.Source, head []byte) bool {
	for _, off := range []int{0, 512, 1024, 2048} {
		if len(head) >= off+8 && string(head[off:off+8]) == hdf5.Magic {
			return true
		}
	}
	if !ziparchive.IsZip(head) {
		return false
	}
	if len(head) >= 30 {
		n := int(binary.LittleEndian.Uint16(head[26:]))
		if len(head) >= 30+n {
			switch string(head[30 : 30+n]) {
			case metadataJSON, configJSON, weightsH5:
				return true
			}
		}
	}
	a, err := ziparchive.Open(src, convert.Limits{}.Defaults())
	return err == nil && a.Member(configJSON) != nil && (a.Member(weightsH5) != nil || a.Member(metadataJSON) != nil)
}

const (
	configJSON   = "config.json"
	metadataJSON = "metadata.json"
	weightsH5    = "model.weights.h5"
)

func open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	c := &checkpoint{info: convert.Info{Format: "keras", Metadata: map[string]any{}}}
	defer func() {
		if r := recover(); r != nil {
			err = convert.Invalidf("keras: unreadable input (%v)", r)
		}
		if err != nil {
			c.Close()
			ck = nil
		}
	}()
	head := make([]byte, min(src.Size(), 8))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if ziparchive.IsZip(head) {
		if err := c.openArchive(ctx, src, lim); err != nil {
			return nil, err
		}
		return c, nil
	}
	f, err := hdf5.Open(src, src.Size())
	if err != nil {
		return nil, err
	}
	if err := c.openH5(f, nil, lim); err != nil {
		return nil, err
	}
	return c, nil
}

// openH5 reads the tensors of an HDF5 file in whichever Keras layout it has.
// cfg is a .keras archive's parsed config.json (nil otherwise).
func (c *checkpoint) openH5(f *hdf5.File, cfg map[string]any, lim convert.Limits) error {
	root, err := f.Root()
	if err != nil {
		return err
	}
	if !root.IsGroup() {
		return convert.Invalidf("HDF5 root object is not a group")
	}
	b := &builder{ck: c, lim: lim, names: map[string]bool{}, fileSize: f.Size()}
	mw, err := root.Child("model_weights")
	if err != nil {
		return err
	}
	switch {
	case cfg != nil:
		return b.v3(root, cfg)
	case mw != nil:
		return b.legacy(root, mw, true)
	}
	has, err := hasAttrList(root, "layer_names")
	if err != nil {
		return err
	}
	if has {
		return b.legacy(root, root, false)
	}
	for _, name := range []string{"layers", "vars", "optimizer", "_layer_checkpoint_dependencies"} {
		g, err := root.Child(name)
		if err != nil {
			return err
		}
		if g != nil && g.IsGroup() {
			return b.v3(root, nil)
		}
	}
	return convert.Invalidf("no Keras weights in this HDF5 file: no model_weights group, no layer_names attribute and no Keras 3 layers/vars groups")
}

// tensorSrc is where one tensor's values are.
type tensorSrc struct {
	ds   *hdf5.Dataset
	el   element
	path string // the dataset's HDF5 path
}

type checkpoint struct {
	info    convert.Info
	srcs    []tensorSrc
	closers []func() error
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

func (c *checkpoint) Values(ctx context.Context, i int) (rc io.ReadCloser, err error) {
	defer func() {
		if r := recover(); r != nil {
			rc, err = nil, convert.Invalidf("keras: unreadable data (%v)", r)
		}
	}()
	if i < 0 || i >= len(c.srcs) {
		return nil, fmt.Errorf("keras: tensor index %d out of range", i)
	}
	s := c.srcs[i]
	r, err := s.ds.Reader(ctx)
	if err != nil {
		return nil, err
	}
	return &guarded{newValueStream(r, s.el, s.el.dtype.Size())}, nil
}

func (c *checkpoint) Close() error {
	var first error
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	c.closers = nil
	return first
}

// guarded turns a panic while streaming into an ErrInvalid error.
type guarded struct{ r io.ReadCloser }

func (g *guarded) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, convert.Invalidf("keras: unreadable data (%v)", r)
		}
	}()
	return g.r.Read(p)
}

func (g *guarded) Close() error { return g.r.Close() }

// builder collects tensors in checkpoint order.
type builder struct {
	ck       *checkpoint
	lim      convert.Limits
	names    map[string]bool
	fileSize int64
}

// add lists the dataset obj under name (or alt, when name is taken).
func (b *builder) add(name, alt, layerType string, obj *hdf5.Object, path string) error {
	if !obj.IsDataset() {
		return convert.Invalidf("%s is a group, not a dataset", path)
	}
	if len(b.ck.srcs) >= b.lim.MaxTensors {
		return convert.Invalidf("more than %d tensors", b.lim.MaxTensors)
	}
	if b.names[name] {
		name = alt
		for i := 2; b.names[name]; i++ {
			name = fmt.Sprintf("%s#%d", alt, i)
		}
	}
	ds, err := obj.Dataset()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tag := ""
	if a, err := obj.Attr("dtype"); err == nil && a != nil && a.IsText() {
		tag, _ = a.Text()
	}
	el, reason := dtypeOf(ds.Type, tag)
	if reason == "" && ds.Space.Null {
		reason = "an HDF5 null dataspace holds no values"
	}
	if reason != "" {
		b.names[name] = true
		b.ck.info.Skipped = append(b.ck.info.Skipped, convert.Skipped{Name: name, Reason: reason})
		return nil
	}
	shape := make([]int64, len(ds.Space.Dims))
	for i, d := range ds.Space.Dims {
		if d > 1<<62 {
			return convert.Invalidf("%s: dimension %d is too large", path, d)
		}
		shape[i] = int64(d)
	}
	if _, err := convert.CheckedNumel(shape, el.dtype.Size()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := ds.Check(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Values come from the file, at most inflated (deflate tops out near
	// 1032:1); more than that would be fill values of unwritten storage,
	// which Keras never leaves and which could stream forever.
	if n, _ := ds.Bytes(); n > 64<<20 && n/uint64(max(b.fileSize, 1)) > uint64(max(b.lim.MaxInflateRatio, 1100)) {
		return convert.Invalidf("%s declares %d bytes of values in an HDF5 file of %d bytes", path, n, b.fileSize)
	}
	b.names[name] = true
	layer, param := convert.SplitName(name, "/")
	param = strings.TrimSuffix(param, ":0")
	b.ck.info.Tensors = append(b.ck.info.Tensors, convert.Tensor{
		Name: name, Layer: layer, Param: param, LayerType: layerType, DType: el.dtype, Shape: shape,
	})
	b.ck.srcs = append(b.ck.srcs, tensorSrc{ds: ds, el: el, path: path})
	return nil
}
