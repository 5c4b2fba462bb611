package convert

import (
	"io"
)

// Section streams the n bytes at off of r. Data that ends early is ErrInvalid,
// naming what was expected, so a truncated file never passes as a short tensor.
func Section(r io.ReaderAt, off, n int64) io.ReadCloser {
	return &section{sr: io.NewSectionReader(r, off, n), want: n}
}

type section struct {
	sr   *io.SectionReader
	want int64
	got  int64
}

func (s *section) Read(p []byte) (int, error) {
	n, err := s.sr.Read(p)
	s.got += int64(n)
	if err == io.EOF && s.got < s.want {
		return n, Invalidf("data ends after %d of %d bytes", s.got, s.want)
	}
	return n, err
}

func (s *section) Close() error { return nil }
