package numpy

// .npz archives: a zip of .npy members, one per array. The array names are
// what np.load(f).files shows: the member name without ".npy", keys with '/'
// kept as they are ("a/b.npy" -> "a/b").
//
// Stored members (np.savez) are read in place with ReadAt. Deflated members
// (np.savez_compressed) are inflated afresh for each Values call. A deflated
// Fortran-order array needs random access to be rewritten to C order:
// inflating the stream again for every tile would cost time quadratic in its
// size, so its data is spooled once, in memory up to spoolInMemory bytes,
// else to an unlinked temp file (so it is removed even on a crash) of at
// most lim.MaxTempBytes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/ziparchive"
)

// spoolInMemory is the largest deflated Fortran-order array spooled in memory.
var spoolInMemory int64 = 8 << 20

type npzArray struct {
	m *ziparchive.Member
	h *header
}

type npzFile struct {
	info   convert.Info
	arrays []npzArray // parallel to info.Tensors
	lim    convert.Limits
}

func openNPZ(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	a, err := ziparchive.Open(src, lim)
	if err != nil {
		return nil, err
	}
	ck := &npzFile{info: convert.Info{Format: "numpy"}, lim: lim}
	arrays := 0
	for _, m := range a.Members {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.Dir() {
			continue
		}
		name, ok := strings.CutSuffix(m.Name, ".npy")
		if !ok {
			ck.info.Skipped = append(ck.info.Skipped, convert.Skipped{Name: m.Name, Reason: "not an .npy member"})
			continue
		}
		arrays++
		h, err := memberHeader(m, lim)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", m.Name, err)
		}
		if h.Skip != "" {
			ck.info.Skipped = append(ck.info.Skipped, convert.Skipped{Name: name, Reason: h.Skip})
			continue
		}
		if avail := m.Size - h.DataOffset; h.DataBytes() > avail {
			return nil, convert.Invalidf("array %q of shape %v (%s) needs %d bytes of data, its member holds %d after the header", name, h.Shape, h.Descr, h.DataBytes(), max(avail, 0))
		}
		if len(ck.info.Tensors) >= lim.MaxTensors {
			return nil, convert.Invalidf("more than %d arrays", lim.MaxTensors)
		}
		ck.info.Tensors = append(ck.info.Tensors, convert.Tensor{Name: name, DType: h.DType, Shape: h.Shape})
		ck.arrays = append(ck.arrays, npzArray{m: m, h: h})
	}
	if arrays == 0 && len(a.Members) > 0 {
		return nil, convert.Invalidf("a zip archive without .npy members, not an .npz")
	}
	return ck, nil
}

// memberHeader reads the .npy header at the start of a member.
func memberHeader(m *ziparchive.Member, lim convert.Limits) (*header, error) {
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readHeader(rc, m.Size, lim.MaxHeaderBytes)
}

func (c *npzFile) Info() *convert.Info { return &c.info }
func (c *npzFile) Close() error        { return nil }

func (c *npzFile) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.arrays) {
		return nil, convert.Invalidf("no tensor %d", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := c.arrays[i]
	name := c.info.Tensors[i].Name
	rc, err := c.values(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", name, err)
	}
	return rc, nil
}

func (c *npzFile) values(ctx context.Context, a npzArray) (io.ReadCloser, error) {
	h, n := a.h, a.h.DataBytes()
	if a.m.Stored() {
		if h.Fortran && len(h.Shape) > 1 {
			// Read in place at random: the member's CRC is not checked.
			sec, err := a.m.Section()
			if err != nil {
				return nil, err
			}
			return arrayValues(io.NewSectionReader(sec, h.DataOffset, n), h)
		}
		rc, err := a.m.SectionCRC(h.DataOffset, n)
		if err != nil {
			return nil, err
		}
		if h.Swap {
			rc = convert.ByteSwapped(rc, h.Itemsize)
		}
		return rc, nil
	}
	rc, err := a.m.Open()
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, h.DataOffset); err != nil {
		rc.Close()
		return nil, shortRead(err, "the member's header")
	}
	data := &memberData{rc: rc, left: n, rest: a.m.Size - h.DataOffset - n}
	if !h.Fortran || len(h.Shape) <= 1 {
		if h.Swap {
			return convert.ByteSwapped(data, h.Itemsize), nil
		}
		return data, nil
	}
	region, closeRegion, err := spool(ctx, data, n, c.lim)
	data.Close()
	if err != nil {
		return nil, err
	}
	out, err := arrayValues(region, h)
	if err != nil {
		closeRegion()
		return nil, err
	}
	return &closeAlso{ReadCloser: out, also: closeRegion}, nil
}

// spool copies n bytes of r where they can be read at random: memory when
// small, an unlinked temp file otherwise.
func spool(ctx context.Context, r io.Reader, n int64, lim convert.Limits) (convert.SizedReaderAt, func() error, error) {
	if n <= spoolInMemory {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, nil, shortRead(err, "the array data")
		}
		return bytes.NewReader(buf), func() error { return nil }, nil
	}
	if n > lim.MaxTempBytes {
		return nil, nil, convert.Invalidf("a deflated Fortran-order array of %d bytes needs a temp file over the limit of %d", n, lim.MaxTempBytes)
	}
	f, err := os.CreateTemp("", "ckpt2csv-npz-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name()) // unlinked: gone when closed, whatever happens
	if _, err := io.CopyN(f, ctxReader{ctx, r}, n); err != nil {
		f.Close()
		return nil, nil, shortRead(err, "the array data")
	}
	return io.NewSectionReader(f, 0, n), f.Close, nil
}

// memberData streams the left bytes of array data from an inflating member,
// and reads the rest of the member so that archive/zip checks its CRC.
type memberData struct {
	rc   io.ReadCloser
	left int64
	rest int64 // member bytes after the data
	err  error
}

// maxDrain bounds the trailing bytes inflated only to check the CRC.
const maxDrain = 1 << 20

func (d *memberData) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.rc.Read(p)
	d.left -= int64(n)
	if err == io.EOF && d.left > 0 {
		err = convert.Invalidf("member data ends %d bytes early", d.left)
	}
	if err != nil && err != io.EOF {
		d.err = err
		return 0, err
	}
	if d.left == 0 && d.rest <= maxDrain {
		// Read to the member's end before yielding the last bytes, so that
		// archive/zip checks the CRC and a corrupt member never streams whole.
		if _, err := io.Copy(io.Discard, io.LimitReader(d.rc, d.rest+1)); err != nil {
			d.err = err
			return 0, err
		}
	}
	return n, nil
}

func (d *memberData) Close() error { return d.rc.Close() }

type closeAlso struct {
	io.ReadCloser
	also func() error
}

func (c *closeAlso) Close() error {
	return errors.Join(c.ReadCloser.Close(), c.also())
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
