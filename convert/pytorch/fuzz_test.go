package pytorch

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// memSource is a convert.Source over bytes.
type memSource struct {
	*bytes.Reader
	name string
}

func (m memSource) Name() string { return m.name }
func (m memSource) Sibling(context.Context, string) (convert.Source, error) {
	return nil, os.ErrNotExist
}

func FuzzOpen(f *testing.F) {
	for _, pattern := range []string{"testdata/*.pt", "testdata/*.ckpt", "../../testdata/hostile/pytorch-*.pt"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) <= 16<<10 {
				f.Add(b)
			}
		}
	}
	recoverPanics = false
	lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000, MaxTempBytes: 1 << 20, MaxPickleMemo: 10000}.Defaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		src := memSource{bytes.NewReader(data), "fuzz.pt"}
		Match(src, data[:min(len(data), convert.HeadSize)])
		ck, err := Open(context.Background(), src, lim)
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		streamSome(t, ck)
	})
}

// FuzzTorchPickle fuzzes the data.pkl of a well-formed archive whose storages
// "0".."3" hold 64 bytes each: the interpretation of torch's records (storages,
// rebuild functions, views, module walks) rather than the zip container.
func FuzzTorchPickle(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pt")
	for _, p := range files {
		zr, err := zip.OpenReader(p)
		if err != nil {
			continue
		}
		for _, m := range zr.File {
			if strings.HasSuffix(m.Name, "/data.pkl") && m.UncompressedSize64 < 8<<10 {
				rc, _ := m.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	recoverPanics = false
	lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000, MaxTempBytes: 1 << 20, MaxPickleMemo: 10000}.Defaults()
	storage := bytes.Repeat([]byte{0x3f, 0x80, 0, 0}, 16)
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer
		z := zip.NewWriter(&buf)
		add := func(name string, b []byte) {
			w, _ := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			w.Write(b)
		}
		add("a/data.pkl", pkl)
		for _, k := range []string{"0", "1", "2", "3"} {
			add("a/data/"+k, storage)
		}
		z.Close()
		ck, err := Open(context.Background(), memSource{bytes.NewReader(buf.Bytes()), "fuzz.pt"}, lim)
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		streamSome(t, ck)
	})
}

// streamSome streams the tensors of ck while 4 MiB of values per input allow
// (so that mutated expands stay fast): a stream that ends without an error
// holds exactly numel values.
func streamSome(t *testing.T, ck convert.Checkpoint) {
	budget := int64(4 << 20)
	for i, tn := range ck.Info().Tensors {
		want := tn.Numel() * int64(tn.DType.Size())
		if want > budget {
			continue
		}
		budget -= want
		rc, err := ck.Values(context.Background(), i)
		if err != nil {
			continue
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err == nil && n != want {
			t.Fatalf("tensor %q: %d bytes, want %d", tn.Name, n, want)
		}
	}
}
