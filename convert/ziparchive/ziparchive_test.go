package ziparchive

// Tests of the zip safety checks: names, sizes, ratios, CRCs, I/O errors.

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"ckpt2csv/convert"
)

type mem struct{ *bytes.Reader }

func (mem) Name() string { return "mem.zip" }
func (mem) Sibling(context.Context, string) (convert.Source, error) {
	return nil, errors.New("no siblings")
}

type member struct {
	name        string
	method      uint16
	flags       uint16
	plain       []byte
	size, csize int64 // -1: as computed
	crc         int64 // -1: as computed
}

func m(name string, method uint16, plain string) member {
	return member{name: name, method: method, plain: []byte(plain), size: -1, csize: -1, crc: -1}
}

func build(t testing.TB, ms ...member) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, x := range ms {
		data := x.plain
		if x.method == zip.Deflate {
			var c bytes.Buffer
			w, _ := flate.NewWriter(&c, flate.BestCompression)
			w.Write(x.plain)
			w.Close()
			data = c.Bytes()
		}
		fh := &zip.FileHeader{Name: x.name, Method: x.method, Flags: x.flags,
			CRC32: crc32.ChecksumIEEE(x.plain), UncompressedSize64: uint64(len(x.plain)), CompressedSize64: uint64(len(data))}
		if x.size >= 0 {
			fh.UncompressedSize64 = uint64(x.size)
		}
		if x.csize >= 0 {
			fh.CompressedSize64 = uint64(x.csize)
		}
		if x.crc >= 0 {
			fh.CRC32 = uint32(x.crc)
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func src(b []byte) mem { return mem{bytes.NewReader(b)} }

func TestReadMembers(t *testing.T) {
	big := strings.Repeat("0123456789", 10000)
	a, err := Open(src(build(t, m("s.npy", zip.Store, "stored"), m("d/x.npy", zip.Deflate, big), m("dir/", zip.Store, ""))), convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Members) != 3 || a.Member("d/x.npy") == nil || a.Member("nope") != nil || !a.Member("dir/").Dir() {
		t.Fatalf("members %v", a.Members)
	}
	for name, want := range map[string]string{"s.npy": "stored", "d/x.npy": big} {
		mb := a.Member(name)
		for pass := 0; pass < 2; pass++ { // a member reopens for each pass
			rc, err := mb.Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != want {
				t.Fatalf("%s: %d bytes, %v", name, len(got), err)
			}
		}
		got, err := mb.ReadAll(1 << 20)
		if err != nil || string(got) != want {
			t.Fatalf("%s ReadAll: %v", name, err)
		}
	}
	sec, err := a.Member("s.npy").Section()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := sec.ReadAt(buf, 2); err != nil || string(buf) != "ore" {
		t.Fatalf("section read %q %v", buf, err)
	}
	if _, err := a.Member("d/x.npy").Section(); err == nil {
		t.Fatal("Section of a deflated member")
	}
	if _, err := a.Member("d/x.npy").ReadAll(10); !errors.Is(err, convert.ErrInvalid) {
		t.Fatalf("ReadAll over max: %v", err)
	}
}

func TestSectionCRC(t *testing.T) {
	good := m("a", zip.Store, "header|data|trailer")
	bad := good
	bad.crc = 12345
	for _, c := range []struct {
		m       member
		wantErr bool
	}{{good, false}, {bad, true}} {
		a, err := Open(src(build(t, c.m)), convert.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := a.Members[0].SectionCRC(7, 4)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		_, err = io.ReadFull(rc, got) // exactly the range: the check comes before its last byte
		if c.wantErr {
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "checksum error") {
				t.Fatalf("want a checksum error, got %q %v", got, err)
			}
			continue
		}
		if err != nil || string(got) != "data" {
			t.Fatalf("got %q %v", got, err)
		}
		if _, err := a.Members[0].SectionCRC(7, 100); !errors.Is(err, convert.ErrInvalid) {
			t.Fatalf("range past the member: %v", err)
		}
	}
}

func TestRefusesHostileArchives(t *testing.T) {
	ok := m("a.npy", zip.Store, "x")
	for _, c := range []struct {
		name string
		ms   []member
		msg  string
	}{
		{"duplicate", []member{ok, ok}, "appears twice"},
		{"parent", []member{m("../a", zip.Store, "x")}, "escapes"},
		{"inner parent", []member{m("a/../../b", zip.Store, "x")}, "escapes"},
		{"backslash parent", []member{m(`a\..\..\b`, zip.Store, "x")}, "escapes"},
		{"absolute", []member{m("/etc/passwd", zip.Store, "x")}, "absolute"},
		{"windows absolute", []member{m(`C:\x`, zip.Store, "x")}, "absolute"},
		{"nul", []member{m("a\x00b", zip.Store, "x")}, "NUL"},
		{"empty name", []member{m("", zip.Store, "x")}, "empty name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := build(t, c.ms...)
			_, err := Open(src(b), convert.Limits{})
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("want ErrInvalid with %q, got %v", c.msg, err)
			}
			if names, err := List(src(b)); err != nil || len(names) != len(c.ms) {
				t.Fatalf("List: %v %v", names, err)
			}
		})
	}
}

func TestRefusesHostileMembers(t *testing.T) {
	zeros := strings.Repeat("\x00", 4<<20)
	withSize := func(x member, size, csize int64) member { x.size, x.csize = size, csize; return x }
	withCRC := func(x member, crc int64) member { x.crc = crc; return x }
	withFlags := func(x member, f uint16) member { x.flags = f; return x }
	for _, c := range []struct {
		name string
		m    member
		lim  convert.Limits
		msg  string
	}{
		{"stored sizes disagree", withSize(m("a", zip.Store, "abc"), 10, 3), convert.Limits{}, "is stored but declares"},
		{"data past the end", withSize(m("a", zip.Store, "abc"), 1000, 1000), convert.Limits{}, "past the end of the archive"},
		{"ratio", withSize(m("a", zip.Deflate, zeros), 4<<30, -1), convert.Limits{}, "ratio over the limit of 1100"},
		{"inflate bytes", m("a", zip.Deflate, zeros), convert.Limits{MaxInflateBytes: 1 << 20}, "more than the limit of 1048576"},
		{"method", member{name: "a", method: 12, plain: []byte("x"), size: -1, csize: -1, crc: -1}, convert.Limits{}, "compression method 12"},
		{"encrypted", withFlags(m("a", zip.Store, "abc"), 1), convert.Limits{}, "encrypted"},
		{"crc", withCRC(m("a", zip.Deflate, "hello hello"), 1), convert.Limits{}, "checksum error"},
		{"longer than declared", withSize(m("a", zip.Deflate, "hello hello hello"), 5, -1), convert.Limits{}, "not a valid zip file"},
		{"shorter than declared", withSize(m("a", zip.Deflate, "hello"), 50, -1), convert.Limits{}, "unexpected EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Open(src(build(t, c.m)), c.lim)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := a.Members[0].Open()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
			}
			if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("want ErrInvalid with %q, got %v", c.msg, err)
			}
		})
	}
	// The ratio limit spares small members, and never refuses what deflate
	// really makes of zeros (about 1030:1).
	for _, c := range []struct {
		size int
		lim  convert.Limits
	}{{1 << 20, convert.Limits{MaxInflateRatio: 10}}, {40 << 20, convert.Limits{MaxInflateRatio: 10}}, {40 << 20, convert.Limits{}}} {
		a, _ := Open(src(build(t, m("a", zip.Deflate, strings.Repeat("\x00", c.size)))), c.lim)
		if _, err := a.Members[0].ReadAll(int64(c.size)); err != nil {
			t.Fatalf("%d zeros: %v", c.size, err)
		}
	}
}

func TestMemberCountLimit(t *testing.T) {
	var ms []member
	for i := 0; i < 1030; i++ {
		ms = append(ms, m(fmt.Sprintf("m%d", i), zip.Store, ""))
	}
	_, err := Open(src(build(t, ms...)), convert.Limits{MaxTensors: 1})
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "1030 members, more than the limit of 1025") {
		t.Fatalf("got %v", err)
	}
}

// failing fails reads that touch [lo, hi) with a network-like error.
type failing struct {
	mem
	lo, hi int64
}

var errNetwork = errors.New("connection reset")

func (f failing) ReadAt(p []byte, off int64) (int, error) {
	if off < f.hi && off+int64(len(p)) > f.lo {
		return 0, errNetwork
	}
	return f.mem.ReadAt(p, off)
}

// An I/O error of the source is not a corrupt archive: it may pass on a retry.
func TestIOErrorsAreNotInvalid(t *testing.T) {
	b := build(t, m("a", zip.Deflate, strings.Repeat("abcdefgh", 1000)), m("b", zip.Store, strings.Repeat("x", 70000)))
	a, err := Open(failing{src(b), 35, 45}, convert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range a.Members[:1] {
		rc, err := mb.Open()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
		}
		if err == nil || errors.Is(err, convert.ErrInvalid) || !errors.Is(err, errNetwork) {
			t.Fatalf("%s: want the network error, not ErrInvalid: %v", mb.Name, err)
		}
	}
}

// FuzzOpen: opening an archive and reading its members never panics; errors
// about the bytes are ErrInvalid.
func FuzzOpen(f *testing.F) {
	f.Add(build(f, m("a.npy", zip.Store, "abc"), m("b.npy", zip.Deflate, strings.Repeat("xy", 100))))
	f.Add(build(f, m("../a", zip.Store, "x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := convert.Limits{MaxInflateBytes: 1 << 22, MaxHeaderBytes: 1 << 20, MaxTensors: 1000}
		List(src(b))
		a, err := Open(src(b), lim)
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		for _, mb := range a.Members {
			rc, err := mb.Open()
			if err != nil {
				if !errors.Is(err, convert.ErrInvalid) {
					t.Fatalf("error not ErrInvalid: %v", err)
				}
				continue
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil && !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			if n > mb.Size {
				t.Fatalf("%s: %d bytes, declared %d", mb.Name, n, mb.Size)
			}
		}
	})
}
