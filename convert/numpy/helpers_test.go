package numpy

// Test helpers: an in-memory Source, .npy and .zip builders, and the hostile cases.

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"sort"
	"testing"

	"ckpt2csv/convert"
)

type mem struct {
	*bytes.Reader
	name string
}

func memSource(name string, b []byte) *mem { return &mem{bytes.NewReader(b), name} }

func (m *mem) Name() string { return m.name }
func (m *mem) Sibling(context.Context, string) (convert.Source, error) {
	return nil, fs.ErrNotExist
}

// npyBytes is a version 1.0 .npy with the given header dict text and data.
func npyBytes(t testing.TB, dict string, data []byte) []byte {
	hdr := []byte(dict)
	pad := 64 - (10+len(hdr)+1)%64
	hdr = append(append(hdr, bytes.Repeat([]byte(" "), pad%64)...), '\n')
	var b bytes.Buffer
	b.WriteString(magic + "\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.Write(hdr)
	b.Write(data)
	return b.Bytes()
}

// zipBytes archives files (sorted by name), stored or deflated.
func zipBytes(t testing.TB, files map[string][]byte, deflate bool) []byte {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range names {
		m := zip.Store
		if deflate {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawMember is a zip member written with sizes and CRC as given, not as computed.
type rawMember struct {
	name        string
	method      uint16
	data        []byte // as stored (compressed when method is Deflate)
	crc         uint32
	size, csize uint64
}

func rawZip(t testing.TB, members ...rawMember) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: m.name, Method: m.method, CRC32: m.crc,
			CompressedSize64: m.csize, UncompressedSize64: m.size,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func deflateBytes(b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// honest is a member whose sizes and CRC match its data.
func honest(name string, plain []byte, deflate bool) rawMember {
	m := rawMember{name: name, method: zip.Store, data: plain, crc: crc32.ChecksumIEEE(plain), size: uint64(len(plain)), csize: uint64(len(plain))}
	if deflate {
		m.method, m.data = zip.Deflate, deflateBytes(plain)
		m.csize = uint64(len(m.data))
	}
	return m
}

type hostileCase struct {
	name, file string // file: the name under testdata/hostile
	data       []byte
	msg        string // what the error must say
	export     bool   // also a file in testdata/hostile
}

func hostileCases(t testing.TB) []hostileCase {
	f4 := func(shape string) string {
		return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
	}
	good := npyBytes(t, f4("(2, 2)"), make([]byte, 16))
	object, err := os.ReadFile("testdata/npy/object.npy")
	if err != nil {
		t.Fatal(err)
	}
	v1Past := append([]byte(magic+"\x01\x00\xff\xff"), []byte("{'descr': '<f4'")...)
	badVersion := append([]byte(magic+"\x09\x00"), good[8:]...)

	deflated := honest("a.npy", good, true)
	badCRC := deflated
	badCRC.crc ^= 0xdeadbeef
	corrupt := deflated
	corrupt.data = append([]byte{0xff, 0xff, 0xff}, bytes.Repeat([]byte{0x55}, len(deflated.data))...)
	corrupt.csize = uint64(len(corrupt.data))
	longer := deflated // inflates to more than it declares
	longer.data = deflateBytes(append(append([]byte{}, good...), make([]byte, 64)...))
	longer.csize = uint64(len(longer.data))
	bomb := deflated
	bomb.size = 4 << 30
	storedCRC := honest("a.npy", good, false)
	storedCRC.crc ^= 1
	storedLie := honest("a.npy", good, false)
	storedLie.size = storedLie.csize + 100
	short := honest("a.npy", npyBytes(t, f4("(100,)"), make([]byte, 16)), true)

	return []hostileCase{
		{"data shorter than the shape", "numpy-truncated.npy", npyBytes(t, f4("(10, 10)"), make([]byte, 40)), "needs 400 bytes of data", true},
		{"2^40 values over a tiny payload", "numpy-huge-shape.npy", npyBytes(t, f4("(1099511627776,)"), make([]byte, 8)), "needs 4398046511104 bytes of data", true},
		{"header length past the end", "numpy-header-past-eof.npy", v1Past, "file ends inside the 65535-byte npy header", true},
		{"malformed header", "numpy-bad-header.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,", nil), "npy header", true},
		{"negative dimension", "numpy-negative-dim.npy", npyBytes(t, f4("(-1, 4)"), make([]byte, 16)), "negative dimension", true},
		{"code in the header", "numpy-code-in-header.npy", npyBytes(t, "{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': (1,), }", nil), "npy header: unexpected", true},
		{"unknown version", "numpy-bad-version.npy", badVersion, "version 9.0 is not supported", true},
		{"object array", "numpy-object.npy", object, "pickle", true},
		{"preamble only", "", []byte(magic + "\x01"), "file ends inside the .npy preamble", false},
		{"npz duplicate member", "numpy-npz-duplicate.npz", rawZip(t, honest("a.npy", good, false), honest("a.npy", good, false)), "appears twice", true},
		{"npz escaping member name", "numpy-npz-escape.npz", rawZip(t, honest("../../etc/a.npy", good, false)), "escapes the archive", true},
		{"npz absolute member name", "", rawZip(t, honest("/tmp/a.npy", good, false)), "absolute path", false},
		{"npz stored sizes disagree", "numpy-npz-stored-size.npz", rawZip(t, storedLie), "is stored but declares", true},
		{"npz inflate ratio", "numpy-npz-ratio.npz", rawZip(t, bomb), "ratio over the limit", true},
		{"npz corrupt deflate data", "numpy-npz-corrupt.npz", rawZip(t, corrupt), "corrupt input", true},
		{"npz CRC mismatch", "numpy-npz-crc.npz", rawZip(t, badCRC), "checksum error", true},
		{"npz stored CRC mismatch", "numpy-npz-stored-crc.npz", rawZip(t, storedCRC), "checksum error", true},
		{"npz member longer than declared", "", rawZip(t, longer), "not a valid zip file", false},
		{"npz member data shorter than the shape", "numpy-npz-short-member.npz", rawZip(t, short), "its member holds", true},
	}
}
