// Compressed joblib files: recognising the compressor from its magic bytes
// (as joblib.numpy_pickle_utils._detect_compressor does) and inflating the
// stream into a bounded temporary file, so that the pickle and the array bytes
// after it can then be read with ReadAt like an uncompressed file.
//
// Formats, as joblib's compressors write them (joblib/compressor.py):
//
//	zlib        78 xx            RFC 1950 (joblib's default for compress=N)
//	gzip        1f 8b            RFC 1952 (also any file named .gz)
//	bz2         "BZh" 1-9        bzip2
//	xz          fd "7zXZ" 00     .xz container
//	lzma        5d 00 ...        LZMA "alone" (.lzma), Python's FORMAT_ALONE
//	lz4         04 22 4d 18      LZ4 frame
//	zfile       "ZF" + hex size  joblib < 0.10: a length header, then zlib
//
// Limits: the inflated size is bounded by Limits.MaxInflateBytes and
// Limits.MaxTempBytes, and by Limits.MaxInflateRatio times the compressed size
// (with a small floor, so that a tiny file may inflate to a few hundred KiB).
// The temporary file is unlinked as soon as it is created where the system
// allows it, and in any case removed by Close.
package sklearn

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"ckpt2csv/convert"
)

// codec names a compressor; "" is an uncompressed stream.
type codec string

const (
	codecNone  codec = ""
	codecZlib  codec = "zlib"
	codecGzip  codec = "gzip"
	codecBzip2 codec = "bz2"
	codecXz    codec = "xz"
	codecLzma  codec = "lzma"
	codecLz4   codec = "lz4"
	codecZFile codec = "zfile"
)

// zfileHeader is "ZF" then the inflated length as "0x..." left-justified to
// len(hex(2**64)) = 19 characters (joblib.numpy_pickle_compat.write_zfile).
const zfileHeader = 2 + 19

// inflateFloor is the inflated size always allowed, whatever the ratio.
const inflateFloor = 1 << 20

// sniffCodec recognises a compressed stream from its first bytes.
func sniffCodec(head []byte) codec {
	switch {
	case len(head) >= 2 && head[0] == 0x78 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 && head[1]&0x20 == 0:
		return codecZlib // CMF deflate with a 32 KiB window, valid FCHECK, no preset dictionary
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		return codecGzip
	case len(head) >= 4 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h' && head[3] >= '1' && head[3] <= '9':
		return codecBzip2
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return codecXz
	case bytes.HasPrefix(head, []byte{0x04, 0x22, 0x4d, 0x18}):
		return codecLz4
	case len(head) >= 13 && head[0] == 0x5d && head[1] == 0 && lzmaAloneHeader(head):
		return codecLzma
	case len(head) >= zfileHeader && head[0] == 'Z' && head[1] == 'F' && bytes.HasPrefix(head[2:], []byte("0x")):
		return codecZFile
	}
	return codecNone
}

// strongMagic reports whether head starts with a magic long enough to name
// its compressor with confidence: xz, LZ4 frame, and bzip2 with its block
// (or end-of-stream) magic.
func strongMagic(c codec, head []byte) bool {
	switch c {
	case codecXz, codecLz4:
		return true
	case codecBzip2:
		return len(head) >= 10 && (string(head[4:10]) == "1AY&SY" || string(head[4:10]) == "\x17rE8P\x90")
	}
	return false
}

// lzmaAloneHeader checks the 13-byte .lzma header: properties 0x5d (lc=3,
// lp=0, pb=2, what Python writes), a dictionary size that is a power of two
// or 2^n+2^(n-1), and an unpacked size that is unknown (-1) or plausible.
func lzmaAloneHeader(h []byte) bool {
	dict := uint32(h[1]) | uint32(h[2])<<8 | uint32(h[3])<<16 | uint32(h[4])<<24
	if dict < 1<<12 {
		return false
	}
	for d := dict; d > 3; d >>= 1 {
		if d&1 != 0 {
			return false
		}
	}
	size := uint64(0)
	for i := 12; i >= 5; i-- {
		size = size<<8 | uint64(h[i])
	}
	return size == ^uint64(0) || size < 1<<50
}

// decompressor wraps r in the codec's reader.
func decompressor(c codec, r io.Reader) (io.Reader, error) {
	switch c {
	case codecZlib:
		return zlib.NewReader(r)
	case codecGzip:
		return gzip.NewReader(r) // multi-member streams read as one, like Python's gzip
	case codecBzip2:
		return bzip2.NewReader(r), nil
	case codecXz:
		return xz.NewReader(r)
	case codecLzma:
		return lzma.NewReader(r)
	case codecLz4:
		return lz4.NewReader(r), nil
	case codecZFile:
		return zfileReader(r)
	}
	return nil, fmt.Errorf("unknown codec %q", c)
}

// zfileReader reads joblib's old "ZF" header and returns the zlib stream after it.
func zfileReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	var h [zfileHeader]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(h[4:])), 16, 64)
	if err != nil || !strings.HasPrefix(string(h[2:]), "0x") {
		return nil, convert.Invalidf("joblib zfile: bad length header %q", h[2:])
	}
	// joblib <= 0.8.4 under Python 2 wrote one more space; zlib data never starts with one.
	if b, err := br.Peek(1); err == nil && b[0] == ' ' {
		br.Discard(1)
	}
	z, err := zlib.NewReader(br)
	if err != nil {
		return nil, err
	}
	return &exactReader{r: z, left: int64(n)}, nil
}

// exactReader stops after the declared length.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// srcReader reads a Source sequentially and remembers its I/O errors, so that
// a network failure under a decompressor is reported as such (retryable), not
// as corrupt data.
type srcReader struct {
	src convert.Source
	off int64
	ctx context.Context
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if s.off >= s.src.Size() {
		return 0, io.EOF
	}
	if rem := s.src.Size() - s.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.src.ReadAt(p, s.off)
	s.off += int64(n)
	if err == io.EOF {
		if n > 0 {
			err = nil
		}
	} else if err != nil {
		s.err = err
	}
	return n, err
}

// peekInflated returns up to n bytes from the start of the decompressed
// stream, reading at most maxIn compressed bytes. It is for detection: any
// failure yields what was inflated so far.
func peekInflated(src convert.Source, c codec, n int, maxIn int64) []byte {
	defer func() { recover() }() //nolint:errcheck // a decompressor's panic only means "not this format"
	sr := &srcReader{src: limitedSource{src, maxIn}, ctx: context.Background()}
	d, err := decompressor(c, bufio.NewReaderSize(sr, 32<<10))
	if err != nil {
		return nil
	}
	buf := make([]byte, n)
	k, _ := io.ReadFull(d, buf)
	return buf[:k]
}

// limitedSource shows only the first n bytes of a Source.
type limitedSource struct {
	convert.Source
	n int64
}

func (l limitedSource) Size() int64 { return min(l.Source.Size(), l.n) }

// spool inflates src into a new temporary file within the limits and returns
// it positioned anywhere; the caller reads it with ReadAt and closes it with
// removeTemp. Corrupt data and limit breaches wrap ErrInvalid; errors reading
// src or writing the temporary file do not.
func spool(ctx context.Context, src convert.Source, c codec, lim convert.Limits) (t *tempFile, size int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = convert.Invalidf("%s stream: decompressor failed: %v", c, r)
		}
		if err != nil && t != nil {
			t.Close()
			t = nil
		}
	}()
	maxOut := min(lim.MaxInflateBytes, lim.MaxTempBytes)
	if r := lim.MaxInflateRatio; r > 0 && src.Size() < maxOut/r {
		maxOut = min(maxOut, max(r*src.Size(), inflateFloor))
	}
	sr := &srcReader{src: src, ctx: ctx}
	d, err := decompressor(c, bufio.NewReaderSize(sr, 256<<10))
	if err != nil {
		return nil, 0, inflateErr(c, sr, err)
	}
	f, err := os.CreateTemp("", "ckpt2csv-sklearn-*")
	if err != nil {
		return nil, 0, fmt.Errorf("creating a temporary file for the %s stream: %w", c, err)
	}
	t = &tempFile{File: f}
	// Unlink at once where the system allows it: the file lives while open and
	// cannot be left behind, even if the process is killed.
	t.unlinked = os.Remove(f.Name()) == nil
	n, err := io.Copy(f, io.LimitReader(d, maxOut+1))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return t, 0, fmt.Errorf("writing the inflated %s stream to a temporary file: %w", c, err)
		}
		return t, 0, inflateErr(c, sr, err)
	}
	if n > maxOut {
		return t, 0, convert.Invalidf("%s stream inflates to more than %d bytes from %d (a decompression bomb, or raise the inflate limits)", c, maxOut, src.Size())
	}
	return t, n, nil
}

// inflateErr reports a decompression failure: the Source's own error when it
// had one (retryable), else the stream is corrupt.
func inflateErr(c codec, sr *srcReader, err error) error {
	if sr.err != nil {
		return fmt.Errorf("reading the %s stream: %w", c, sr.err)
	}
	if errors.Is(err, convert.ErrInvalid) {
		return err
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return convert.Invalidf("%s stream is truncated", c)
	}
	return convert.Invalidf("%s stream is corrupt: %v", c, err)
}

// tempFile is a spooled stream; Close removes it.
type tempFile struct {
	*os.File
	unlinked bool
}

func (t *tempFile) Close() error {
	err := t.File.Close()
	if !t.unlinked {
		os.Remove(t.Name())
	}
	return err
}
