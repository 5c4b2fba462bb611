// Package converttest holds helpers the format readers' tests share: a Source
// over local files, reading a tensor's values back, and the real-world fixture
// ground truth in ../shared/fixtures/real (tests skip when it is absent).
package converttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"ckpt2csv/convert"
)

// File is a convert.Source over a local file.
type File struct {
	*os.File
	path string
	size int64
}

// OpenFile opens path as a Source; the test closes it at cleanup.
func OpenFile(t testing.TB, path string) *File {
	t.Helper()
	f, err := openFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func openFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{File: f, path: path, size: st.Size()}, nil
}

func (f *File) Size() int64       { return f.size }
func (f *File) Name() string      { return f.path }
func (f *File) LocalPath() string { return f.path }
func (f *File) Sibling(_ context.Context, rel string) (convert.Source, error) {
	return openFile(filepath.Join(filepath.Dir(f.path), filepath.FromSlash(rel)))
}

// Open detects and opens path with default limits.
func Open(t testing.TB, path string) (convert.Checkpoint, error) {
	t.Helper()
	return convert.Open(context.Background(), OpenFile(t, path), "auto", convert.Limits{}.Defaults())
}

// Values reads tensor i's whole value stream.
func Values(t testing.TB, ck convert.Checkpoint, i int) []byte {
	t.Helper()
	rc, err := ck.Values(context.Background(), i)
	if err != nil {
		t.Fatalf("tensor %d: %v", i, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("tensor %d: %v", i, err)
	}
	tn := ck.Info().Tensors[i]
	if want := tn.Numel() * int64(tn.DType.Size()); int64(len(b)) != want {
		t.Fatalf("tensor %q: streamed %d bytes, want %d", tn.Name, len(b), want)
	}
	return b
}

// SHA256 is the SPEC §5 checksum of streamed values: NaNs canonicalised, then sha256, hex.
func SHA256(d convert.DType, b []byte) string {
	c := append([]byte(nil), b...)
	convert.CanonicalNaN(d.ValueType(), c)
	s := sha256.Sum256(c)
	return hex.EncodeToString(s[:])
}

// Expected is one real-world fixture's ground truth (expected/NAME.json).
type Expected struct {
	File         string           `json:"file"`
	Format       string           `json:"format"`
	Tensors      []ExpectedTensor `json:"tensors"`
	ExtraTensors []ExpectedTensor `json:"extra_tensors"`
	Notes        any              `json:"notes"`
}

// ExpectedTensor is one tensor as the real framework read it.
type ExpectedTensor struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Numel  int64   `json:"numel"`
	SHA256 string  `json:"sha256"`
	First  []any   `json:"first"`
	Sum    any     `json:"sum"`
	// LayerType is nil where the ground truth does not give one.
	LayerType *string `json:"layer_type"`
}

// Fixture is one file's entry in a format's testdata/expected.json, as the
// generator wrote it with the real framework.
type Fixture struct {
	Tensors []ExpectedTensor `json:"tensors"`
	Skipped []string         `json:"skipped"`
}

// LoadJSON decodes the JSON file at path into v.
func LoadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// MatchTensors checks that ck lists exactly want's tensors, by name and in
// order, each as MatchTensor checks it.
func MatchTensors(t testing.TB, ck convert.Checkpoint, want []ExpectedTensor) {
	t.Helper()
	info := ck.Info()
	var got, names []string
	for _, tn := range info.Tensors {
		got = append(got, tn.Name)
	}
	for _, w := range want {
		names = append(names, w.Name)
	}
	if !slices.Equal(got, names) {
		t.Fatalf("tensors\n got %q\nwant %q", got, names)
	}
	for i, w := range want {
		MatchTensor(t, ck, i, w)
	}
}

// MatchTensor checks tensor i of ck against w: dtype and shape, the layer
// type where w gives one, and the sha256 of its streamed values bit for bit
// (read only when dtype and shape agree). It reports whether dtype and shape
// agree.
func MatchTensor(t testing.TB, ck convert.Checkpoint, i int, w ExpectedTensor) bool {
	t.Helper()
	tn := ck.Info().Tensors[i]
	if string(tn.DType) != w.DType || !slices.Equal(tn.Shape, w.Shape) {
		t.Errorf("%s: %s %v, want %s %v", w.Name, tn.DType, tn.Shape, w.DType, w.Shape)
		return false
	}
	if w.LayerType != nil && tn.LayerType != *w.LayerType {
		t.Errorf("%s: layer type %q, want %q", w.Name, tn.LayerType, *w.LayerType)
	}
	if got := SHA256(tn.DType, Values(t, ck, i)); got != w.SHA256 {
		t.Errorf("%s: sha256 %s, want %s", w.Name, got, w.SHA256)
	}
	return true
}

// MatchSkipped checks that got names exactly want, in order, each with a reason.
func MatchSkipped(t testing.TB, got []convert.Skipped, want []string) {
	t.Helper()
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
		if s.Reason == "" {
			t.Errorf("%s skipped without a reason", s.Name)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("skipped %q, want %q", names, want)
	}
}

// RealFixtures is the folder of real-world checkpoints, or "" when this clone has none.
func RealFixtures() string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "real")
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	return ""
}

// Real returns the path of a real-world fixture file and its ground truth,
// skipping the test when the fixtures folder is absent.
func Real(t testing.TB, name string) (path string, exp Expected) {
	t.Helper()
	dir := RealFixtures()
	if dir == "" {
		t.Skip("no ../shared/fixtures/real in this clone")
	}
	b, err := os.ReadFile(filepath.Join(dir, "expected", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "files", exp.File), exp
}

// HostileDir is the repository's testdata/hostile folder of corrupt and
// hostile files, each beside a NAME.err holding the message it must fail with.
func HostileDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "hostile")
}

// HostileFiles lists the files of HostileDir matching pattern, without the .err files.
func HostileFiles(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(HostileDir(), pattern))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range m {
		if !strings.HasSuffix(f, ".err") {
			files = append(files, f)
		}
	}
	return files
}

// CheckRefused checks err, the failure of the hostile file at path: an
// ErrInvalid whose one-line message contains what path.err says.
func CheckRefused(t testing.TB, path string, err error) {
	t.Helper()
	want, rerr := os.ReadFile(path + ".err")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, convert.ErrInvalid) {
		t.Errorf("%v does not wrap ErrInvalid", err)
	}
	if w := strings.TrimSpace(string(want)); !strings.Contains(err.Error(), w) {
		t.Errorf("error %q does not contain %q", err, w)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// HostileFileUpToDate checks that HostileDir holds name with data and
// name.err with msg, or writes them when CKPT2CSV_WRITE_HOSTILE is set.
func HostileFileUpToDate(t testing.TB, name string, data []byte, msg string) {
	t.Helper()
	path := filepath.Join(HostileDir(), name)
	if os.Getenv("CKPT2CSV_WRITE_HOSTILE") != "" {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".err", []byte(msg+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: run with CKPT2CSV_WRITE_HOSTILE=1", path)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s differs from the case: run with CKPT2CSV_WRITE_HOSTILE=1", path)
	}
	m, _ := os.ReadFile(path + ".err")
	if strings.TrimSpace(string(m)) != msg {
		t.Errorf("%s.err = %q, want %q", path, m, msg)
	}
}

// Mem is a convert.Source over bytes in memory. Sibling opens Files[rel] (a
// Mem with the same Files), fails with SiblingErr when set, and otherwise
// with an error wrapping fs.ErrNotExist.
type Mem struct {
	Path       string
	Data       []byte
	Files      map[string][]byte
	SiblingErr error
}

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(m.Data)) {
		return 0, io.EOF
	}
	n := copy(p, m.Data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Mem) Size() int64  { return int64(len(m.Data)) }
func (m *Mem) Name() string { return m.Path }
func (m *Mem) Sibling(_ context.Context, rel string) (convert.Source, error) {
	if m.SiblingErr != nil {
		return nil, m.SiblingErr
	}
	if b, ok := m.Files[rel]; ok {
		return &Mem{Path: rel, Data: b, Files: m.Files}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
}

// CheckStreams reads every tensor of ck, at most limit bytes of each, as the
// fuzz targets do: a failure must wrap ErrInvalid, and a stream that ends
// without one must hold exactly the tensor's numel values.
func CheckStreams(t testing.TB, ck convert.Checkpoint, limit int64) {
	t.Helper()
	for i, tn := range ck.Info().Tensors {
		rc, err := ck.Values(context.Background(), i)
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("tensor %q: values: %v is not ErrInvalid", tn.Name, err)
			}
			continue
		}
		n, err := io.Copy(io.Discard, io.LimitReader(rc, limit))
		rc.Close()
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("tensor %q: stream: %v is not ErrInvalid", tn.Name, err)
			}
			continue
		}
		if want := tn.Numel() * int64(tn.DType.Size()); n != want {
			t.Fatalf("tensor %q streamed %d bytes, want %d", tn.Name, n, want)
		}
	}
}

// OpenAndReadAll opens src as format (or "auto") with lim and streams every
// tensor as ReadAll does, returning the first error.
func OpenAndReadAll(src convert.Source, format string, lim convert.Limits) error {
	ck, err := convert.Open(context.Background(), src, format, lim)
	if err != nil {
		return err
	}
	defer ck.Close()
	return ReadAll(ck)
}

// ReadAll streams every tensor of ck and returns the first error. It reads
// exactly the bytes the shape says first, as an exporter does (a corrupt
// stream must fail before its last byte), then to the end of the stream; a
// stream shorter or longer than its shape without an error is an error.
func ReadAll(ck convert.Checkpoint) error {
	for i, tn := range ck.Info().Tensors {
		rc, err := ck.Values(context.Background(), i)
		if err != nil {
			return err
		}
		_, err = io.CopyN(io.Discard, rc, tn.Numel()*int64(tn.DType.Size()))
		if err == io.EOF {
			err = fmt.Errorf("tensor %q: short stream without an error", tn.Name)
		} else if err == nil {
			var n int64
			if n, err = io.Copy(io.Discard, rc); err == nil && n > 0 {
				err = fmt.Errorf("tensor %q: %d bytes beyond its shape", tn.Name, n)
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Refused reports whether err is set, failing the test unless it wraps
// ErrInvalid: a reader refuses bad input with ErrInvalid and nothing else.
func Refused(t testing.TB, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, convert.ErrInvalid) {
		t.Fatalf("%v does not wrap ErrInvalid", err)
	}
	return err != nil
}
