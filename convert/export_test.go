package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// memDir is an in-memory Dir.
type memDir struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func newMemDir() *memDir { return &memDir{objs: map[string][]byte{}} }

type memWriter struct {
	d    *memDir
	name string
	buf  bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *memWriter) Close() error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.d.objs[w.name] = w.buf.Bytes()
	return nil
}
func (w *memWriter) Abort() {}

func (d *memDir) Create(_ context.Context, name string) (ObjectWriter, error) {
	return &memWriter{d: d, name: name}, nil
}
func (d *memDir) NewReader(_ context.Context, name string) (io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.objs[name]
	if !ok {
		return nil, fmt.Errorf("%s: not found", name)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (d *memDir) Delete(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.objs, name)
	return nil
}
func (d *memDir) names() []string {
	var n []string
	for k := range d.objs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// fakeCkpt holds tensors as raw little-endian bytes.
type fakeCkpt struct {
	info Info
	data [][]byte
}

func (f *fakeCkpt) Info() *Info { return &f.info }
func (f *fakeCkpt) Values(_ context.Context, i int) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.data[i])), nil
}
func (f *fakeCkpt) Close() error { return nil }

func (f *fakeCkpt) add(name string, d DType, shape []int64, data []byte) {
	f.info.Tensors = append(f.info.Tensors, Tensor{Name: name, DType: d, Shape: shape})
	f.data = append(f.data, data)
}

func f32s(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func sampleCkpt() *fakeCkpt {
	ck := &fakeCkpt{info: Info{Format: "test"}}
	ck.add("features.0.weight", Float32, []int64{2, 3}, f32s(0.1, -0.012345678, 1.234567e6, 1e-5, float32(math.Inf(1)), float32(math.NaN())))
	ck.add("features.0.bias", Float16, []int64{2}, []byte{0x00, 0x3c, 0xff, 0x7b}) // 1, 65504
	ck.add(`=odd,"name"`, Int64, []int64{}, binary.LittleEndian.AppendUint64(nil, uint64(1<<62)))
	ck.add("empty", Float64, []int64{0}, nil)
	ck.add("fc.flag", Bool, []int64{3}, []byte{1, 0, 1})
	return ck
}

func gunzip(t *testing.T, b []byte) string {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestExportWritesSpecRows(t *testing.T) {
	dir := newMemDir()
	sc, err := Export(context.Background(), sampleCkpt(), dir, Options{Header: true})
	if err != nil {
		t.Fatal(err)
	}
	got := gunzip(t, dir.objs["part-00000.csv.gz"])
	want := `layer_index,layer_name,param_type,tensor,flat_index,value
0,features.0,weight,features.0.weight,0,0.1
0,features.0,weight,features.0.weight,1,-0.012345678
0,features.0,weight,features.0.weight,2,1.234567e+06
0,features.0,weight,features.0.weight,3,1e-05
0,features.0,weight,features.0.weight,4,Inf
0,features.0,weight,features.0.weight,5,NaN
0,features.0,bias,features.0.bias,0,1
0,features.0,bias,features.0.bias,1,65504
1,,"'=odd,""name""","'=odd,""name""",0,4611686018427387904
2,fc,flag,fc.flag,0,1
2,fc,flag,fc.flag,1,0
2,fc,flag,fc.flag,2,1
`
	if got != want {
		t.Errorf("csv:\n%s\nwant:\n%s", got, want)
	}
	if sc.Totals.Values != 12 || sc.Totals.Tensors != 5 || len(sc.Shards) != 1 || sc.Shards[0].Rows != 12 {
		t.Errorf("totals %+v shards %+v", sc.Totals, sc.Shards)
	}
	if sc.Tensors[4].FirstRow != 9 || sc.Tensors[2].LayerIndex != 1 || sc.Tensors[3].LayerName != "" {
		t.Errorf("tensor records %+v", sc.Tensors)
	}
	st := sc.Tensors[0].Stats
	if st.NaN != 1 || st.Inf != 1 || float64(st.Min) != float64(float32(-0.012345678)) {
		t.Errorf("stats %+v", st)
	}
}

// Every NaN is hashed as the canonical one of its dtype (SPEC §5), whatever
// its sign and payload.
func TestExportHashesNaNCanonical(t *testing.T) {
	ck := &fakeCkpt{info: Info{Format: "test"}}
	nans := []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0xffffffff}
	var raw, canon []byte
	for _, u := range nans {
		raw = binary.LittleEndian.AppendUint32(raw, u)
		canon = binary.LittleEndian.AppendUint32(canon, 0x7fc00000)
	}
	ck.add("w", Float32, []int64{4}, raw)
	sc, err := Export(context.Background(), ck, newMemDir(), Options{Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if got := sc.Tensors[0].SHA256; got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s, want that of four canonical NaNs", got)
	}
	if st := sc.Tensors[0].Stats; st.NaN != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestExportShardsAtFirstRowPastSize(t *testing.T) {
	ck := &fakeCkpt{info: Info{Format: "test"}}
	var vals []float32
	for i := range 100000 {
		vals = append(vals, float32(i)*0.25)
	}
	ck.add("w", Float32, []int64{100000}, f32s(vals...))
	for _, comp := range []string{"none", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			dir := newMemDir()
			sc, err := Export(context.Background(), ck, dir, Options{Header: true, Compression: comp, ShardSize: 300000, Columns: []string{"flat_index", "value"}})
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			var first int64
			for i, s := range sc.Shards {
				b := dir.objs[s.Path]
				switch comp {
				case "gzip":
					b = []byte(gunzip(t, b))
				case "zstd":
					d, _ := zstd.NewReader(nil)
					b, err = d.DecodeAll(b, nil)
					if err != nil {
						t.Fatal(err)
					}
				}
				text := string(b)
				if !strings.HasPrefix(text, "flat_index,value\n") {
					t.Fatalf("shard %d has no header", i)
				}
				if int64(len(text)) != s.Bytes || s.FirstRow != first {
					t.Errorf("shard %d: %d bytes, first row %d; recorded %+v", i, len(text), first, s)
				}
				// closed at the first row boundary at or past the size, not before
				last := strings.LastIndex(text[:len(text)-1], "\n") + 1
				if i < len(sc.Shards)-1 && (int64(len(text)) < 300000 || int64(last) >= 300000) {
					t.Errorf("shard %d cut at %d bytes", i, len(text))
				}
				first += s.Rows
				all.WriteString(strings.TrimPrefix(text, "flat_index,value\n"))
			}
			if len(sc.Shards) < 3 || first != 100000 || !strings.HasSuffix(all.String(), "99999,24999.75\n") {
				t.Errorf("%d shards, %d rows", len(sc.Shards), first)
			}
			rep, err := Verify(context.Background(), &sidecarDir{dir, sc})
			if err != nil || rep.Rows != 100000 {
				t.Errorf("verify: %v %+v", err, rep)
			}
		})
	}
}

// sidecarDir serves sc as metadata.json beside dir's shards.
type sidecarDir struct {
	*memDir
	sc *Sidecar
}

func (d *sidecarDir) NewReader(ctx context.Context, name string) (io.ReadCloser, error) {
	if name == "metadata.json" {
		b, err := d.sc.Marshal()
		return io.NopCloser(bytes.NewReader(b)), err
	}
	return d.memDir.NewReader(ctx, name)
}

func TestExportIsDeterministic(t *testing.T) {
	a, b := newMemDir(), newMemDir()
	for _, d := range []*memDir{a, b} {
		if _, err := Export(context.Background(), sampleCkpt(), d, Options{Header: true, Threads: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.objs["part-00000.csv.gz"], b.objs["part-00000.csv.gz"]) {
		t.Error("same input gave different shard bytes")
	}
}

func TestVerifyDetectsAlteredShards(t *testing.T) {
	dir := newMemDir()
	sc, err := Export(context.Background(), sampleCkpt(), dir, Options{Header: true, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	sd := &sidecarDir{dir, sc}
	if _, err := Verify(context.Background(), sd); err != nil {
		t.Fatalf("verify of a good export: %v", err)
	}
	good := dir.objs["part-00000.csv"]
	dir.objs["part-00000.csv"] = bytes.Replace(good, []byte(",0.1\n"), []byte(",0.2\n"), 1)
	if _, err := Verify(context.Background(), sd); !errors.Is(err, ErrMismatch) {
		t.Errorf("altered shard: %v", err)
	}
	delete(dir.objs, "part-00000.csv")
	if _, err := Verify(context.Background(), sd); err == nil {
		t.Error("missing shard passed")
	}
}

// Totals and placements that disagree with the lists they sum are caught.
func TestVerifyChecksTotalsAndPlacement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(sc *Sidecar)
	}{
		{"tensors", func(sc *Sidecar) { sc.Totals.Tensors++ }},
		{"shards", func(sc *Sidecar) { sc.Totals.Shards++ }},
		{"bytes", func(sc *Sidecar) { sc.Totals.Bytes++ }},
		{"stored bytes", func(sc *Sidecar) { sc.Totals.StoredBytes-- }},
		{"tensor shard", func(sc *Sidecar) { sc.Tensors[len(sc.Tensors)-1].Shard = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMemDir()
			sc, err := Export(context.Background(), sampleCkpt(), dir, Options{Header: true, Compression: "gzip", ShardSize: 10})
			if err != nil {
				t.Fatal(err)
			}
			if sc.Tensors[len(sc.Tensors)-1].Shard == 0 {
				t.Fatal("the sample's last tensor should not be in shard 0")
			}
			sd := &sidecarDir{dir, sc}
			if _, err := Verify(context.Background(), sd); err != nil {
				t.Fatalf("verify of a good export: %v", err)
			}
			tc.change(sc)
			if _, err := Verify(context.Background(), sd); !errors.Is(err, ErrMismatch) {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

// Two tensors under one name (a nested key and a dotted one, a name that
// became the same text) would give rows no reader could tell apart.
func TestExportRefusesTwoTensorsOfOneName(t *testing.T) {
	ck := &fakeCkpt{info: Info{Format: "test"}}
	ck.add("a.b", Float32, []int64{1}, f32s(1))
	ck.add("a.b", Float32, []int64{1}, f32s(2))
	dir := newMemDir()
	if _, err := Export(context.Background(), ck, dir, Options{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `two tensors are named "a.b"`) {
		t.Fatalf("err = %v", err)
	}
	if n := dir.names(); len(n) != 0 {
		t.Errorf("left %v", n)
	}
}

func TestExportTruncatedStreamLeavesNothing(t *testing.T) {
	ck := sampleCkpt()
	ck.data[0] = ck.data[0][:10]
	dir := newMemDir()
	_, err := Export(context.Background(), ck, dir, Options{ShardSize: 10})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if n := dir.names(); len(n) != 0 {
		t.Errorf("left %v", n)
	}
}

func TestSelectorGlobs(t *testing.T) {
	s, err := newSelector([]string{"model.*", "dense_?/kernel:0"}, []string{"*optimizer*", "model.fc.[bw]*"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"model.conv.weight": true, "model.fc.weight": false, "dense_1/kernel:0": true,
		"dense_10/kernel:0": false, "optimizer.state.0": false, "other": false,
	} {
		if s.keep(name) != want {
			t.Errorf("keep(%q) = %v", name, !want)
		}
	}
}
