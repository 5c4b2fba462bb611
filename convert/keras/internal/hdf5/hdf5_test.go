package hdf5

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ckpt2csv/convert"
)

// layoutsExpected is testdata/expected.json, written by
// convert/keras/testdata/generate.py with h5py: the sha256 of every
// dataset's bytes as stored, and every text attribute's values.
type layoutsExpected map[string]struct {
	Datasets map[string]struct {
		Shape  []uint64 `json:"shape"`
		SHA256 string   `json:"sha256"`
	} `json:"datasets"`
	Attrs map[string][]string `json:"attrs"`
}

func openFile(t testing.TB, path string) *File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t testing.TB, d *Dataset) []byte {
	t.Helper()
	r, err := d.Reader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLayoutsReadLikeH5py reads every storage layout h5py writes with libver
// "earliest" (superblock 0, symbol-table groups, B-tree v1 chunks) and
// "latest" (superblock 3, link messages, dense links and attributes,
// single-chunk, implicit, fixed-array and B-tree v2 chunk indexes), also
// behind a user block, and compares bytes and attribute text with h5py's.
func TestLayoutsReadLikeH5py(t *testing.T) {
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp layoutsExpected
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	for file, want := range exp {
		t.Run(file, func(t *testing.T) {
			f := openFile(t, filepath.Join("testdata", file))
			root, err := f.Root()
			if err != nil {
				t.Fatal(err)
			}
			for path, w := range want.Datasets {
				o, err := root.Lookup(path)
				if err != nil || o == nil {
					t.Errorf("%s: %v (found %v)", path, err, o != nil)
					continue
				}
				d, err := o.Dataset()
				if err != nil {
					t.Errorf("%s: %v", path, err)
					continue
				}
				if got := d.Space.Dims; !slices.Equal(got, w.Shape) && !(len(got) == 0 && len(w.Shape) == 0) {
					t.Errorf("%s: shape %v, want %v", path, got, w.Shape)
				}
				sum := sha256.Sum256(readAll(t, d))
				if got := hex.EncodeToString(sum[:]); got != w.SHA256 {
					t.Errorf("%s: sha256 %s, want %s", path, got, w.SHA256)
				}
			}
			for key, w := range want.Attrs {
				i := bytes.IndexByte([]byte(key), '@')
				o, err := root.Lookup(key[:i])
				if err != nil || o == nil {
					t.Fatalf("%s: %v", key, err)
				}
				a, err := o.Attr(key[i+1:])
				if err != nil || a == nil {
					t.Errorf("%s: %v (found %v)", key, err, a != nil)
					continue
				}
				got, err := a.Strings()
				if err != nil || !slices.Equal(got, w) {
					t.Errorf("%s = %q (%v), want %q", key, clip(got), err, clip(w))
				}
			}
		})
	}
}

func clip(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// walk visits every object once, reading attributes and all dataset bytes;
// it returns the first error.
func walk(f *File, limit int64) error {
	root, err := f.Root()
	if err != nil {
		return err
	}
	seen := map[uint64]bool{}
	var visit func(o *Object, depth int) error
	visit = func(o *Object, depth int) error {
		if seen[o.Addr] || depth > 64 {
			return nil
		}
		seen[o.Addr] = true
		as, err := o.Attributes()
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.IsText() {
				if _, err := a.Strings(); err != nil {
					return err
				}
			}
		}
		if o.IsDataset() {
			d, err := o.Dataset()
			if err != nil {
				return err
			}
			r, err := d.Reader(context.Background())
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, io.LimitReader(r, limit))
			return err
		}
		if !o.IsGroup() {
			return nil
		}
		links, err := o.Links()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Soft {
				continue
			}
			c, err := f.Object(l.Addr)
			if err != nil {
				return err
			}
			if err := visit(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root, 0)
}

// TestHardLinkCyclesEnd walks files whose groups link back to their
// ancestors: the walk must end and read the one dataset.
func TestHardLinkCyclesEnd(t *testing.T) {
	for _, file := range []string{"cycle_earliest.h5", "cycle_latest.h5"} {
		f := openFile(t, filepath.Join("testdata", file))
		done := make(chan error, 1)
		go func() { done <- walk(f, 1<<20) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", file, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: walk did not end", file)
		}
	}
}

// TestDamagedFilesFailCleanly cuts the layout files short and flips bytes:
// every failure must be an ErrInvalid error, never a panic or a hang.
func TestDamagedFilesFailCleanly(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, file := range []string{"layouts_earliest.h5", "layouts_latest.h5"} {
		orig, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		try := func(what string, b []byte) {
			t.Helper()
			f, err := Open(bytes.NewReader(b), int64(len(b)))
			if err == nil {
				err = walk(f, 1<<20)
			}
			if err != nil && !errors.Is(err, convert.ErrInvalid) {
				t.Errorf("%s %s: %v does not wrap ErrInvalid", file, what, err)
			}
		}
		for cut := 0; cut < len(orig); cut += len(orig)/150 + 1 {
			try("cut", orig[:cut])
		}
		for i := 0; i < 300; i++ {
			b := slices.Clone(orig)
			for j := 0; j < 4; j++ {
				b[rng.Intn(len(b))] ^= byte(1 << rng.Intn(8))
			}
			try("flipped", b)
		}
	}
}

func TestNotHDF5(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("PK\x03\x04 not hdf5"), []byte(Magic)} {
		if _, err := Open(bytes.NewReader(b), int64(len(b))); !errors.Is(err, convert.ErrInvalid) {
			t.Errorf("%q: %v", b, err)
		}
	}
}

// FuzzOpenAndWalk feeds arbitrary bytes to the reader: it must return
// (an ErrInvalid error or data), never panic, loop or allocate without bound.
func FuzzOpenAndWalk(f *testing.F) {
	for _, file := range []string{"seed_earliest.h5", "seed_latest.h5", "cycle_earliest.h5", "cycle_latest.h5"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Open(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			err = walk(h, 1<<16)
		}
		if err != nil && !errors.Is(err, convert.ErrInvalid) {
			t.Fatalf("%v does not wrap ErrInvalid", err)
		}
	})
}
