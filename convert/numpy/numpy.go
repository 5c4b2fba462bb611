// Package numpy reads NumPy arrays: a single .npy (format versions 1.0, 2.0
// and 3.0, numpy.lib.format / NEP 1) and .npz archives of them (np.savez,
// stored members, and np.savez_compressed, deflated members).
//
// Every numeric dtype is exported (float16/32/64, int8..64, uint8..64,
// bool), big-endian arrays byte-swapped and Fortran-order arrays rewritten to
// C order while streaming, in bounded memory. Complex, string, datetime,
// structured and object arrays are listed in Info.Skipped with a reason.
//
// Limits: the header is at most lim.MaxHeaderBytes; every shape goes through
// convert.CheckedNumel; an array's data must fit in its file or member before
// anything streams; zip archives get the checks of convert/ziparchive; a
// deflated Fortran-order member is spooled (in memory up to spoolInMemory,
// else to a temp file of at most lim.MaxTempBytes that is always removed).
package numpy

import (
	"bytes"
	"context"
	"io"
	"path"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/ziparchive"
)

func init() {
	convert.Register(convert.Format{Name: "numpy", Match: match, Open: open})
}

// match recognises an .npy by its magic, and an .npz as a zip archive with
// an *.npy member. np.savez writes nothing else, but np.load reads any zip,
// and one zipped by hand may hold folders or a README beside the arrays (the
// export lists those as skipped). A member that marks another zip format
// (PyTorch's pickles, a Keras 3 config) leaves the archive to that format.
func match(src convert.Source, head []byte) bool {
	if bytes.HasPrefix(head, []byte(magic)) {
		return true
	}
	if !ziparchive.IsZip(head) {
		return false
	}
	names, err := ziparchive.List(src)
	if err != nil {
		// damaged: still ours when its first member is an array
		first, _ := ziparchive.FirstName(head)
		return strings.HasSuffix(first, ".npy")
	}
	npy := false
	for _, n := range names {
		base := path.Base(n)
		if strings.HasSuffix(base, ".pkl") || base == "config.json" || base == "model.weights.h5" {
			return false
		}
		npy = npy || strings.HasSuffix(n, ".npy")
	}
	return npy
}

func open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	defer func() {
		if r := recover(); r != nil {
			ck, err = nil, convert.Invalidf("numpy: unreadable input (%v)", r)
		}
	}()
	head := make([]byte, min(src.Size(), 6))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	if ziparchive.IsZip(head) {
		return openNPZ(ctx, src, lim)
	}
	return openNPY(ctx, src, lim)
}

// openNPY opens a single .npy: one tensor named after the file ("weights.npy" -> "weights").
func openNPY(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	h, err := readHeader(convert.Section(src, 0, src.Size()), src.Size(), lim.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	name := convert.BaseName(src)
	if len(name) >= 4 && strings.EqualFold(name[len(name)-4:], ".npy") {
		name = name[:len(name)-4]
	}
	if name == "" {
		name = "arr_0"
	}
	// An object array's data is a pickle (np.save(allow_pickle=True) of a
	// dict or a list): the file holds nothing we can export, and exporting an
	// empty checkpoint would look like success. Refuse it plainly. Other
	// dtypes we skip (complex, strings) are well-formed data that simply has
	// no CSV form: those give a checkpoint with a Skipped entry.
	if h.Object {
		return nil, convert.Invalidf("%s: an object array, whose data is a Python pickle; it is not read", name)
	}
	ck := &npyFile{src: src, h: h, info: convert.Info{Format: "numpy"}}
	if h.Skip != "" {
		ck.info.Skipped = []convert.Skipped{{Name: name, Reason: h.Skip}}
		return ck, nil
	}
	if avail := src.Size() - h.DataOffset; h.DataBytes() > avail {
		return nil, convert.Invalidf("array %q of shape %v (%s) needs %d bytes of data, the file has %d after its header", name, h.Shape, h.Descr, h.DataBytes(), max(avail, 0))
	}
	ck.info.Tensors = []convert.Tensor{{Name: name, DType: h.DType, Shape: h.Shape}}
	return ck, nil
}

type npyFile struct {
	src  convert.Source
	h    *header
	info convert.Info
}

func (c *npyFile) Info() *convert.Info { return &c.info }
func (c *npyFile) Close() error        { return nil }

func (c *npyFile) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i != 0 || len(c.info.Tensors) == 0 {
		return nil, convert.Invalidf("no tensor %d", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return arrayValues(io.NewSectionReader(c.src, c.h.DataOffset, c.h.DataBytes()), c.h)
}

// arrayValues streams an array whose data is the whole of region, resolving
// Fortran order and byte order.
func arrayValues(region convert.SizedReaderAt, h *header) (io.ReadCloser, error) {
	var rc io.ReadCloser
	if h.Fortran && len(h.Shape) > 1 {
		var err error
		rc, err = convert.OpenStrided(region, 0, h.Itemsize, h.Shape, fortranStrides(h.Shape))
		if err != nil {
			return nil, err
		}
	} else {
		rc = convert.Section(region, 0, h.DataBytes())
	}
	if h.Swap {
		rc = convert.ByteSwapped(rc, h.Itemsize)
	}
	return rc, nil
}

// fortranStrides are the element strides of a column-major array.
func fortranStrides(shape []int64) []int64 {
	st := make([]int64, len(shape))
	c := int64(1)
	for k, d := range shape {
		st[k] = c
		c *= d
	}
	return st
}
