// Package convert holds the model every format reader shares (Checkpoint, Tensor,
// DType), format detection by magic bytes, and the export pipeline that turns a
// checkpoint's tensors into Arrow record batches, the batches into sharded CSV,
// and the result into the metadata.json sidecar.
//
// A format reader lives in its own subpackage (convert/numpy, convert/safetensors,
// ...). It only turns bytes into tensors: it lists them, then streams one
// tensor's logical values on demand. It knows nothing of CSV or buckets.
package convert

import (
	"context"
	"io"
	"strings"
)

// Tensor describes one exported tensor. Shape is row-major; an empty Shape is a 0-d scalar.
type Tensor struct {
	Name string // the framework's own name, e.g. "features.0.weight" or "dense_1/kernel:0"
	// Layer and Param are the name split per SPEC §4 ("features.0" + "weight").
	// Readers whose names do not split at the last '.' set them; when both are
	// empty the exporter splits Name at its last '.'.
	Layer, Param string
	LayerType    string // the layer's class where the checkpoint records it (Conv2d, Dense), else ""
	DType        DType  // the source dtype
	Shape        []int64
}

// Numel is the number of values; the reader has already checked it fits in int64.
func (t Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Skipped records something the checkpoint holds that is not exported, and why.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Info is what a reader knows once a checkpoint is open.
type Info struct {
	Format   string         // a --format name: "numpy", "safetensors", "pytorch", ...
	Tensors  []Tensor       // in checkpoint order
	Skipped  []Skipped      // tensors or objects left out, with a reason
	Metadata map[string]any // the format's own key-value metadata, kept in the sidecar
}

// Checkpoint is an open checkpoint.
type Checkpoint interface {
	Info() *Info
	// Values streams tensor i's logical values: Numel elements of its
	// DType.ValueType(), row-major (C order), little-endian, nothing more.
	// Strides, byte order, Fortran order and quantization are resolved by the reader.
	// A stream that ends early or finds corrupt data returns an error wrapping ErrInvalid.
	Values(ctx context.Context, i int) (io.ReadCloser, error)
	Close() error
}

// Source is one checkpoint object: its bytes and the objects beside it.
type Source interface {
	io.ReaderAt
	Size() int64
	// Name is the object's URI with credentials removed, for messages.
	Name() string
	// Sibling opens the object at rel, a slash-separated path relative to this
	// object's directory (shards of a sharded checkpoint, TF data files, ONNX
	// external data). rel never escapes upward: readers reject ".." themselves.
	Sibling(ctx context.Context, rel string) (Source, error)
}

// LocalFile is implemented by sources that are plain files on local disk, for
// libraries that can only open a file by name.
type LocalFile interface {
	LocalPath() string
}

// BaseName is the last path element of a source's name.
func BaseName(src Source) string {
	n := src.Name()
	if i := strings.IndexAny(n, "?#"); i >= 0 {
		n = n[:i]
	}
	return n[strings.LastIndex(n, "/")+1:]
}

// SplitName splits a tensor name at its last sep: "features.0.weight" -> "features.0", "weight".
// A name without sep is its own param type with an empty layer name.
func SplitName(name, sep string) (layer, param string) {
	i := strings.LastIndex(name, sep)
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+len(sep):]
}
