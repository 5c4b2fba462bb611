package sklearn_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"io"

	"ckpt2csv/convert"
)

// mem is a convert.Source over bytes in memory.
type mem struct {
	*bytes.Reader
	n int64
}

func memSource(b []byte) *mem { return &mem{bytes.NewReader(b), int64(len(b))} }
func (m *mem) Size() int64    { return m.n }
func (m *mem) Name() string   { return "mem://test" }
func (m *mem) Sibling(context.Context, string) (convert.Source, error) {
	return nil, io.ErrUnexpectedEOF
}

func zlibWriter(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }
