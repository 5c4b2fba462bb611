// Package ziparchive opens the zip archives that checkpoints are made of
// (.npz, PyTorch's zip format, Keras .keras) with the checks an untrusted
// archive needs, so that every zip-based reader gets them the same way.
//
// API:
//
//	IsZip(head) bool                   the first bytes are a zip local header (or an empty archive)
//	Open(src, lim) (*Archive, error)   read the central directory, refuse hostile archives
//	List(src) ([]string, error)        member names as they are, unchecked: for Match, so that a
//	                                   hostile archive of a format is still recognised and Open
//	                                   can say what is wrong with it
//	a.Members                          every member, in central-directory order
//	a.Member(name) *Member             look a member up by its exact name (nil if absent)
//	m.Name, m.Method, m.Size, m.CompressedSize, m.Stored(), m.Dir()
//	m.Section() (*io.SectionReader, error)  a stored member's bytes, in place in src (random access)
//	m.SectionCRC(off, n) (io.ReadCloser, error)  stream bytes [off, off+n) of a stored member in
//	                                   place, checking the member's CRC-32 before the last byte
//	m.Open() (io.ReadCloser, error)    stream the member: in place when stored, through a
//	                                   bounded inflater when deflated; reopen for each pass
//	m.ReadAll(max) ([]byte, error)     a small member (a pickle, a JSON config) whole, at most max bytes
//
// Checks, each an error wrapping convert.ErrInvalid:
//   - the central directory: at most lim.MaxTensors+1024 entries and lim.MaxHeaderBytes
//     bytes, checked from the end record before archive/zip allocates anything;
//   - member names: unique, not empty, no NUL, not absolute (/x, C:x), no ".." element
//     (with '/' or '\' as separator);
//   - per member, when it is used: supported method (store, deflate), not encrypted,
//     data inside the archive, stored size == declared size, declared size at most
//     lim.MaxInflateBytes and max(lim.MaxInflateRatio, minDeflateRatio) times the
//     compressed size (members under 1 MiB are exempt from the ratio: they cannot be
//     bombs), and the inflated stream never longer than declared (archive/zip checks
//     it and the CRC at the end).
//
// Deflate cannot expand more than about 1032:1, which is what np.savez_compressed
// makes of an all-zero array (measured: 40,000,128 bytes from 38,970, 1026:1). A
// ratio limit under that would refuse such ordinary files, so the ratio is held to
// at least minDeflateRatio: a declared size past it is a lie, and the bytes really
// inflated are bounded by lim.MaxInflateBytes whatever the ratio.
//
// Corrupt compressed data is ErrInvalid; an I/O error from the source is
// passed on unchanged, since it may be retryable.
//
// Members whose local headers overlap (a "non-recursive zip bomb") are not
// detected up front: each member is still bounded by lim.MaxInflateBytes, and
// a reader only inflates the members it needs.
package ziparchive

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/klauspost/compress/flate"

	"ckpt2csv/convert"
)

// IsZip reports whether head starts like a zip archive: a local file header,
// or the end record of an empty archive.
func IsZip(head []byte) bool {
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06"))
}

// FirstName is the member name in the first local header of head, which a
// damaged archive (cut short, its central directory lost) still has: enough
// to tell whose archive it was, so that the error can say what is wrong.
func FirstName(head []byte) (string, bool) {
	if len(head) < 30 || !bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return "", false
	}
	n := int(binary.LittleEndian.Uint16(head[26:]))
	if 30+n > len(head) {
		return "", false
	}
	return string(head[30 : 30+n]), true
}

// Archive is an open zip archive over a Source.
type Archive struct {
	Members []*Member
	src     convert.Source
	lim     convert.Limits
	byName  map[string]*Member
}

// Member is one archive member.
type Member struct {
	Name           string
	Method         uint16 // zip.Store, zip.Deflate, or another (refused when opened)
	Size           int64  // declared uncompressed size
	CompressedSize int64
	f              *zip.File
	a              *Archive
}

// Stored reports whether the member is stored uncompressed, so it can be read in place.
func (m *Member) Stored() bool { return m.Method == zip.Store }

// Dir reports whether the member is a directory entry.
func (m *Member) Dir() bool { return strings.HasSuffix(m.Name, "/") }

// ratioFloor is the size under which a member is exempt from the ratio check.
const ratioFloor = 1 << 20

// minDeflateRatio is just above the largest expansion deflate can encode.
const minDeflateRatio = 1100

// Open reads src's central directory and checks every member name.
func Open(src convert.Source, lim convert.Limits) (a *Archive, err error) {
	lim = lim.Defaults()
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, convert.Invalidf("zip archive: unreadable (%v)", r)
		}
	}()
	if err := checkDirectory(src, lim); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bounded{src}, src.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below, whatever GODEBUG says
		if isCorrupt(err) {
			return nil, convert.Invalidf("zip archive: %v", err)
		}
		return nil, fmt.Errorf("zip archive: %w", err)
	}
	zr.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser { return flate.NewReader(r) })
	a = &Archive{src: src, lim: lim, byName: make(map[string]*Member, len(zr.File))}
	for _, f := range zr.File {
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		if _, dup := a.byName[f.Name]; dup {
			return nil, convert.Invalidf("zip archive: member %q appears twice", f.Name)
		}
		if f.CompressedSize64 > 1<<62 || f.UncompressedSize64 > 1<<62 {
			return nil, convert.Invalidf("zip archive: member %q declares an impossible size", f.Name)
		}
		m := &Member{
			Name: f.Name, Method: f.Method,
			Size: int64(f.UncompressedSize64), CompressedSize: int64(f.CompressedSize64),
			f: f, a: a,
		}
		a.Members = append(a.Members, m)
		a.byName[f.Name] = m
	}
	return a, nil
}

// List returns the member names of the zip archive src without checking
// them, for format detection. It still bounds the central directory.
func List(src convert.Source) (names []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			names, err = nil, convert.Invalidf("zip archive: unreadable (%v)", r)
		}
	}()
	if err := checkDirectory(src, convert.Limits{}.Defaults()); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bounded{src}, src.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, err
	}
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names, nil
}

// bounded refuses reads that start outside the archive: archive/zip follows
// header offsets from the central directory as they are, and a bogus one is
// a corrupt archive, not an I/O error.
type bounded struct{ src convert.Source }

func (b bounded) ReadAt(p []byte, off int64) (int, error) {
	if size := b.src.Size(); off < 0 || off > size {
		return 0, convert.Invalidf("zip archive: a header points to offset %d, outside the file (%d bytes)", off, size)
	}
	return b.src.ReadAt(p, off)
}

// Member returns the member with exactly this name, or nil.
func (a *Archive) Member(name string) *Member { return a.byName[name] }

// checkName refuses names that are empty, carry NUL, or would escape a
// directory they were extracted to. No reader extracts, but a name that
// tries to is a sign of a hostile archive.
func checkName(name string) error {
	switch {
	case name == "":
		return convert.Invalidf("zip archive: a member has an empty name")
	case strings.IndexByte(name, 0) >= 0:
		return convert.Invalidf("zip archive: member name %q contains NUL", name)
	case name[0] == '/' || name[0] == '\\' || (len(name) >= 2 && name[1] == ':'):
		return convert.Invalidf("zip archive: member name %q is an absolute path", name)
	}
	for _, el := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return convert.Invalidf("zip archive: member name %q escapes the archive", name)
		}
	}
	return nil
}

// checkDirectory bounds the central directory from the end record, before
// archive/zip sizes its tables by it.
func checkDirectory(src convert.Source, lim convert.Limits) error {
	size := src.Size()
	const endLen, maxComment = 22, 65535
	tail := min(size, endLen+maxComment)
	if tail < endLen {
		return convert.Invalidf("zip archive: %d bytes is too short for a zip archive", size)
	}
	buf := make([]byte, tail)
	if n, err := src.ReadAt(buf, size-tail); n < len(buf) {
		if err == nil || err == io.EOF {
			return convert.Invalidf("zip archive: short read of the end record")
		}
		return fmt.Errorf("zip archive: %w", err)
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < endLen {
		return convert.Invalidf("zip archive: no end of central directory record (truncated?)")
	}
	end := buf[i:]
	records := uint64(binary.LittleEndian.Uint16(end[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(end[12:]))
	if records == 0xffff || dirSize == 0xffffffff || binary.LittleEndian.Uint32(end[16:]) == 0xffffffff {
		// zip64: the locator sits just before the end record.
		loc := int64(i) - 20
		if loc >= 0 && bytes.HasPrefix(buf[loc:], []byte("PK\x06\x07")) {
			off := int64(binary.LittleEndian.Uint64(buf[loc+8:]))
			rec := make([]byte, 56)
			if off < 0 || off > size-56 {
				return convert.Invalidf("zip archive: zip64 end record at %d is outside the file", off)
			}
			if n, err := src.ReadAt(rec, off); n < len(rec) {
				if err == nil || err == io.EOF {
					return convert.Invalidf("zip archive: short read of the zip64 end record")
				}
				return fmt.Errorf("zip archive: %w", err)
			}
			if !bytes.HasPrefix(rec, []byte("PK\x06\x06")) {
				return convert.Invalidf("zip archive: bad zip64 end record")
			}
			records = binary.LittleEndian.Uint64(rec[32:])
			dirSize = binary.LittleEndian.Uint64(rec[40:])
		}
	}
	if maxRecords := uint64(lim.MaxTensors) + 1024; records > maxRecords {
		return convert.Invalidf("zip archive: %d members, more than the limit of %d", records, maxRecords)
	}
	if dirSize > uint64(lim.MaxHeaderBytes) {
		return convert.Invalidf("zip archive: central directory of %d bytes, more than the limit of %d", dirSize, lim.MaxHeaderBytes)
	}
	return nil
}

// check validates the member before its data is read and returns the data offset.
func (m *Member) check() (int64, error) {
	f := m.f
	if f.Flags&0x1 != 0 {
		return 0, convert.Invalidf("zip member %q is encrypted", m.Name)
	}
	switch m.Method {
	case zip.Store:
		if m.Size != m.CompressedSize {
			return 0, convert.Invalidf("zip member %q is stored but declares %d bytes of data and %d uncompressed", m.Name, m.CompressedSize, m.Size)
		}
	case zip.Deflate:
		lim := m.a.lim
		if m.Size > lim.MaxInflateBytes {
			return 0, convert.Invalidf("zip member %q inflates to %d bytes, more than the limit of %d", m.Name, m.Size, lim.MaxInflateBytes)
		}
		if ratio := max(lim.MaxInflateRatio, minDeflateRatio); m.Size > ratioFloor && m.Size/max(m.CompressedSize, 1) > ratio {
			return 0, convert.Invalidf("zip member %q inflates %d bytes to %d, a ratio over the limit of %d", m.Name, m.CompressedSize, m.Size, ratio)
		}
	default:
		return 0, convert.Invalidf("zip member %q uses compression method %d, which is not supported (only stored and deflated)", m.Name, m.Method)
	}
	off, err := f.DataOffset()
	if err != nil {
		if isCorrupt(err) {
			return 0, convert.Invalidf("zip member %q: %v", m.Name, err)
		}
		return 0, fmt.Errorf("zip member %q: %w", m.Name, err)
	}
	if size := m.a.src.Size(); off < 0 || off > size || m.CompressedSize > size-off {
		return 0, convert.Invalidf("zip member %q: data at %d+%d runs past the end of the archive (%d bytes)", m.Name, off, m.CompressedSize, size)
	}
	return off, nil
}

// Section returns a stored member's bytes in place, for random access.
func (m *Member) Section() (*io.SectionReader, error) {
	if !m.Stored() {
		return nil, fmt.Errorf("zip member %q is compressed, not stored", m.Name)
	}
	off, err := m.check()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(m.a.src, off, m.Size), nil
}

// maxCRCExtra bounds the bytes outside [off, off+n) that SectionCRC reads
// only to check the CRC; beyond it the CRC is not checked.
const maxCRCExtra = 1 << 20

// SectionCRC streams bytes [off, off+n) of a stored member in place. When
// the member records a CRC-32 and the bytes outside the range are few (an
// .npy header), it reads them too and checks the CRC before yielding the
// last byte, so a corrupt member never streams whole: a mismatch is
// ErrInvalid.
func (m *Member) SectionCRC(off, n int64) (io.ReadCloser, error) {
	if !m.Stored() {
		return nil, fmt.Errorf("zip member %q is compressed, not stored", m.Name)
	}
	base, err := m.check()
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off > m.Size || n > m.Size-off {
		return nil, convert.Invalidf("zip member %q: range %d+%d is outside its %d bytes", m.Name, off, n, m.Size)
	}
	s := &crcSection{src: m.a.src, name: m.Name, base: base, off: off, n: n, size: m.Size, want: m.f.CRC32}
	s.check = m.f.CRC32 != 0 && m.Size-n <= maxCRCExtra
	if s.check {
		if err := s.update(0, off); err != nil {
			return nil, err
		}
	}
	return s, nil
}

type crcSection struct {
	src                io.ReaderAt
	name               string
	base, off, n, size int64
	pos                int64
	crc, want          uint32
	check              bool
	err                error
}

func (s *crcSection) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.pos == s.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), s.n-s.pos))
	if err := s.readAt(p[:k], s.off+s.pos); err != nil {
		s.err = err
		return 0, err
	}
	s.pos += int64(k)
	if s.check {
		s.crc = crc32.Update(s.crc, crc32.IEEETable, p[:k])
		if s.pos == s.n {
			if err := s.update(s.off+s.n, s.size); err != nil {
				s.err = err
				return 0, err
			}
			if s.crc != s.want {
				s.err = convert.Invalidf("zip member %q: %v", s.name, zip.ErrChecksum)
				return 0, s.err
			}
		}
	}
	return k, nil
}

// update adds member bytes [from, to) to the CRC.
func (s *crcSection) update(from, to int64) error {
	buf := make([]byte, min(to-from, 64<<10))
	for from < to {
		k := min(int64(len(buf)), to-from)
		if err := s.readAt(buf[:k], from); err != nil {
			return err
		}
		s.crc = crc32.Update(s.crc, crc32.IEEETable, buf[:k])
		from += k
	}
	return nil
}

func (s *crcSection) readAt(p []byte, off int64) error {
	n, err := s.src.ReadAt(p, s.base+off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return convert.Invalidf("zip member %q: data ends early", s.name)
	}
	return err
}

func (s *crcSection) Close() error { return nil }

// Open streams the member's uncompressed bytes. The stream is exactly the
// declared size; a short or corrupt stream is an error wrapping ErrInvalid.
func (m *Member) Open() (io.ReadCloser, error) {
	off, err := m.check()
	if err != nil {
		return nil, err
	}
	if m.Stored() {
		return convert.Section(m.a.src, off, m.Size), nil
	}
	rc, err := m.f.Open()
	if err != nil {
		if isCorrupt(err) {
			return nil, convert.Invalidf("zip member %q: %v", m.Name, err)
		}
		return nil, fmt.Errorf("zip member %q: %w", m.Name, err)
	}
	return &inflater{rc: rc, name: m.Name}, nil
}

// ReadAll reads a whole member of at most max bytes.
func (m *Member) ReadAll(max int64) ([]byte, error) {
	if m.Size > max {
		return nil, convert.Invalidf("zip member %q is %d bytes, more than the limit of %d", m.Name, m.Size, max)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, 0, m.Size)
	b, err = readAll(rc, b, m.Size)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// readAll reads r to EOF into b, refusing more than n bytes.
func readAll(r io.Reader, b []byte, n int64) ([]byte, error) {
	lr := io.LimitReader(r, n+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if int64(len(b)) > n {
			return nil, convert.Invalidf("zip member is longer than its declared %d bytes", n)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// inflater turns archive/zip's errors about the data into ErrInvalid.
type inflater struct {
	rc   io.ReadCloser
	name string
}

func (z *inflater) Read(p []byte) (int, error) {
	n, err := z.rc.Read(p)
	if err != nil && err != io.EOF && isCorrupt(err) {
		err = convert.Invalidf("zip member %q: %v", z.name, err)
	}
	return n, err
}

func (z *inflater) Close() error { return z.rc.Close() }

// isCorrupt tells errors about the archive's bytes (permanent) from I/O
// errors of the source (which may pass on a retry).
func isCorrupt(err error) bool {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrChecksum), errors.Is(err, zip.ErrAlgorithm),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &ce), errors.Is(err, convert.ErrInvalid):
		return true
	}
	var ie flate.InternalError
	return errors.As(err, &ie)
}
