// The open checkpoint: tensor list and value streaming. Values read the
// storage with range reads through convert.Strided, never the whole storage.

package pytorch

import (
	"context"
	"fmt"
	"io"
	"os"

	"ckpt2csv/convert"
)

type checkpoint struct {
	src       convert.Source
	info      convert.Info
	tensors   []*tensor
	bigEndian bool
	lim       convert.Limits
}

func newCheckpoint(src convert.Source, r *reader, bigEndian bool, lim convert.Limits, meta map[string]any) *checkpoint {
	c := &checkpoint{src: src, bigEndian: bigEndian, lim: lim}
	c.info.Format = Format
	c.info.Metadata = meta
	c.info.Skipped = r.skipped
	for _, n := range r.named {
		c.info.Tensors = append(c.info.Tensors, convert.Tensor{
			Name: n.name, LayerType: n.layerType, DType: n.t.dtype, Shape: n.t.shape,
		})
		c.tensors = append(c.tensors, n.t)
	}
	return c
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

func (c *checkpoint) Close() error { return nil }

func (c *checkpoint) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.tensors) {
		return nil, fmt.Errorf("pytorch: no tensor %d", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := c.tensors[i]
	name := c.info.Tensors[i].Name
	if t.np != nil {
		rc, err := t.np.Values()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return rc, nil
	}
	st, off := t.st, t.offset
	if st.base != nil { // a legacy storage view: a window of its root storage
		off += st.baseOff * int64(st.itemsize) / int64(t.itemsize)
		st = st.base
	}
	var rc io.ReadCloser
	var err error
	switch {
	case st.member == nil: // legacy: the storage sits in the file
		sr := io.NewSectionReader(c.src, st.off, st.numel*int64(st.itemsize))
		rc, err = convert.OpenStrided(sr, off, t.itemsize, t.shape, t.stride)
	case st.member.Stored():
		sr, e := st.member.Section()
		if e != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, e)
		}
		rc, err = convert.OpenStrided(sr, off, t.itemsize, t.shape, t.stride)
	case contiguous(t.shape, t.stride):
		rc, err = c.streamDeflated(st, off, t)
	default:
		rc, err = c.spoolDeflated(st, off, t)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if c.bigEndian {
		rc = convert.ByteSwapped(rc, t.itemsize)
	}
	return rc, nil
}

// contiguous reports whether a view is C-contiguous (dims of size 1 aside).
func contiguous(shape, stride []int64) bool {
	want := int64(1)
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] == 1 {
			continue
		}
		if stride[k] != want {
			return false
		}
		want *= shape[k]
	}
	return true
}

// streamDeflated streams a contiguous view of a compressed member: inflate,
// skip to the offset, take numel elements.
func (c *checkpoint) streamDeflated(st *storage, off int64, t *tensor) (io.ReadCloser, error) {
	rc, err := st.member.Open()
	if err != nil {
		return nil, err
	}
	n := int64(t.itemsize)
	for _, d := range t.shape {
		n *= d
	}
	if _, err := io.CopyN(io.Discard, rc, off*int64(t.itemsize)); err != nil {
		rc.Close()
		if err == io.EOF {
			err = convert.Invalidf("storage %q ends before the tensor's offset", st.key)
		}
		return nil, err
	}
	return &exact{r: rc, c: rc, left: n, want: n}, nil
}

// spoolDeflated inflates a compressed member to a temp file (at most
// lim.MaxTempBytes, removed on Close) so a strided view can read it at random.
func (c *checkpoint) spoolDeflated(st *storage, off int64, t *tensor) (io.ReadCloser, error) {
	if st.member.Size > c.lim.MaxTempBytes {
		return nil, convert.Invalidf("storage %q inflates to %d bytes, more than the temp-file limit of %d", st.key, st.member.Size, c.lim.MaxTempBytes)
	}
	rc, err := st.member.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "ckpt2csv-pytorch-*")
	if err != nil {
		return nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.LimitReader(rc, st.member.Size))
	if err != nil {
		cleanup()
		return nil, err
	}
	s, err := convert.OpenStrided(io.NewSectionReader(f, 0, n), off, t.itemsize, t.shape, t.stride)
	if err != nil {
		cleanup()
		return nil, err
	}
	return &spooled{ReadCloser: s, cleanup: cleanup}, nil
}

type spooled struct {
	io.ReadCloser
	cleanup func()
}

func (s *spooled) Close() error {
	err := s.ReadCloser.Close()
	s.cleanup()
	return err
}

// exact reads exactly want bytes from r; fewer is ErrInvalid.
type exact struct {
	r          io.Reader
	c          io.Closer
	left, want int64
}

func (e *exact) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, convert.Invalidf("data ends after %d of %d bytes", e.want-e.left, e.want)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (e *exact) Close() error { return e.c.Close() }
