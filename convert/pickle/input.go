// Input: the byte source a Decoder reads, with the position, the remaining
// size and the allocation budget it needs to check every length before
// allocating. It is exported for Options.AfterBuild (joblib writes array bytes
// right after a pickle opcode, in the same stream).

package pickle

import (
	"errors"
	"io"

	"ckpt2csv/convert"
)

// inPlaceMin is the length from which bytes read through NewDecoderAt are left
// in the input rather than copied.
const inPlaceMin = 64 << 10

// readChunk bounds each read when the remaining size is unknown, so a hostile
// length costs at most the data actually present plus one chunk.
const readChunk = 1 << 20

// Input is a buffered reader over the pickle's bytes that knows its position.
type Input struct {
	r    io.Reader   // stream mode
	ra   io.ReaderAt // seekable mode
	base int64       // seekable: offset of position 0 in ra
	size int64       // bytes available from position 0; -1 when unknown
	pos  int64       // bytes consumed
	buf  []byte
	i, j int // buf[i:j] is buffered, not yet consumed; it starts at pos
	err  error

	budget int64 // bytes the decoded values may still take
}

func newInput(r io.Reader, ra io.ReaderAt, base, size, budget int64) *Input {
	return &Input{r: r, ra: ra, base: base, size: size, buf: make([]byte, 64<<10), budget: budget}
}

// Offset is the number of bytes consumed (for NewDecoderAt, relative to its off).
func (in *Input) Offset() int64 { return in.pos }

// Remaining is the number of bytes left, or -1 when the size is unknown.
func (in *Input) Remaining() int64 {
	if in.size < 0 {
		return -1
	}
	return in.size - in.pos
}

// fill reads more into the buffer; it returns false at the end of the input or on error.
func (in *Input) fill() bool {
	if in.err != nil {
		return false
	}
	if in.i == in.j {
		in.i, in.j = 0, 0
	} else if in.i > 0 {
		in.j = copy(in.buf, in.buf[in.i:in.j])
		in.i = 0
	}
	want := len(in.buf) - in.j
	if in.size >= 0 {
		left := in.size - in.pos - int64(in.j-in.i)
		if left <= 0 {
			in.err = io.EOF
			return false
		}
		want = int(min(int64(want), left))
	}
	var n int
	var err error
	if in.ra != nil {
		n, err = in.ra.ReadAt(in.buf[in.j:in.j+want], in.base+in.pos+int64(in.j-in.i))
		if err == io.EOF && n > 0 {
			err = nil
		}
	} else {
		n, err = in.r.Read(in.buf[in.j : in.j+want])
		if n > 0 && err == io.EOF {
			err = nil
		}
		if n == 0 && err == nil {
			// a Reader may return 0, nil; try again once before reporting an error
			n, err = in.r.Read(in.buf[in.j : in.j+want])
			if n == 0 && err == nil {
				err = io.ErrNoProgress
			}
		}
	}
	in.j += n
	if err != nil {
		in.err = err
	}
	return n > 0
}

// ReadByte reads one byte.
func (in *Input) ReadByte() (byte, error) {
	if in.i == in.j && !in.fill() {
		return 0, in.eofErr()
	}
	c := in.buf[in.i]
	in.i++
	in.pos++
	return c, nil
}

// Read reads up to len(p) bytes; io.EOF at the end of the input.
func (in *Input) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if in.i == in.j && !in.fill() {
		if in.err == io.EOF {
			return 0, io.EOF
		}
		return 0, in.err
	}
	n := copy(p, in.buf[in.i:in.j])
	in.i += n
	in.pos += int64(n)
	return n, nil
}

// eofErr turns the end of the input into ErrInvalid and keeps I/O errors as they are.
func (in *Input) eofErr() error {
	if in.err == nil || in.err == io.EOF || errors.Is(in.err, io.ErrUnexpectedEOF) {
		return convert.Invalidf("pickle ends early at byte %d", in.pos)
	}
	return in.err
}

// readFull fills p or fails.
func (in *Input) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := in.Read(p)
		p = p[n:]
		if err != nil && len(p) > 0 {
			return in.eofErr()
		}
	}
	return nil
}

// peek returns the next n (<= buffer size) bytes without consuming them.
func (in *Input) peek(n int) ([]byte, error) {
	for in.j-in.i < n {
		if !in.fill() {
			return nil, in.eofErr()
		}
	}
	return in.buf[in.i : in.i+n], nil
}

// charge takes n bytes from the allocation budget.
func (in *Input) charge(n int64) error {
	if n < 0 || n > in.budget {
		return convert.Invalidf("pickle needs more than the %d-byte memory limit for its values (at byte %d)", in.budget, in.pos)
	}
	in.budget -= n
	return nil
}

// checkLen refuses a length read from the stream that is longer than what remains.
func (in *Input) checkLen(n int64, what string) error {
	if n < 0 {
		return convert.Invalidf("pickle: negative %s length %d at byte %d", what, n, in.pos)
	}
	if rem := in.Remaining(); rem >= 0 && n > rem {
		return convert.Invalidf("pickle: %s of %d bytes at byte %d runs past the end of the data (%d bytes left)", what, n, in.pos, rem)
	}
	return nil
}

// readN reads n bytes into memory, charging the budget; n was checked by the caller.
func (in *Input) readN(n int64, what string) ([]byte, error) {
	if err := in.checkLen(n, what); err != nil {
		return nil, err
	}
	if err := in.charge(n); err != nil {
		return nil, err
	}
	if in.size >= 0 {
		b := make([]byte, n)
		return b, in.readFull(b)
	}
	// unknown size: grow as the data arrives
	var b []byte
	for int64(len(b)) < n {
		k := min(n-int64(len(b)), readChunk)
		start := len(b)
		b = append(b, make([]byte, k)...)
		if err := in.readFull(b[start:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Take consumes the next n bytes as a Bytes: left in the input when it was
// opened with NewDecoderAt and n is large, else read into memory (charged to
// the memory limit). A length past the end of the input is ErrInvalid.
func (in *Input) Take(n int64) (*Bytes, error) {
	if err := in.checkLen(n, "byte string"); err != nil {
		return nil, err
	}
	if in.ra != nil && n >= inPlaceMin {
		b := &Bytes{Src: in.ra, Off: in.base + in.pos, N: n}
		return b, in.Discard(n)
	}
	data, err := in.readN(n, "byte string")
	if err != nil {
		return nil, err
	}
	return &Bytes{Data: data}, nil
}

// Discard skips n bytes.
func (in *Input) Discard(n int64) error {
	if err := in.checkLen(n, "skipped run"); err != nil {
		return err
	}
	if buffered := int64(in.j - in.i); n <= buffered {
		in.i += int(n)
		in.pos += n
		return nil
	}
	if in.ra != nil {
		// seekable and size known: jump
		in.pos += n
		in.i, in.j = 0, 0
		return nil
	}
	for n > 0 {
		if in.i == in.j && !in.fill() {
			return in.eofErr()
		}
		k := min(int64(in.j-in.i), n)
		in.i += int(k)
		in.pos += k
		n -= k
	}
	return nil
}

// readLine reads up to and excluding '\n' (protocol 0 text arguments), bounded by the budget.
func (in *Input) readLine() (string, error) {
	var line []byte
	for {
		if in.i == in.j && !in.fill() {
			return "", in.eofErr()
		}
		chunk := in.buf[in.i:in.j]
		k := 0
		for k < len(chunk) && chunk[k] != '\n' {
			k++
		}
		if err := in.charge(int64(k)); err != nil {
			return "", err
		}
		line = append(line, chunk[:k]...)
		if k < len(chunk) {
			in.i += k + 1
			in.pos += int64(k + 1)
			return string(line), nil
		}
		in.i += k
		in.pos += int64(k)
	}
}
