package job

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"ckpt2csv/convert"
	_ "ckpt2csv/convert/numpy"
	"ckpt2csv/storage"
)

// writeNpy writes n float32 values as a .npy file.
func writeNpy(t *testing.T, path string, n int) {
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", n)
	hdr += strings.Repeat(" ", 63-(10+len(hdr))%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)), byte(len(hdr)>>8))
	b = append(b, hdr...)
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i)*0.5))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFaultMatrix injects storage faults into a run of three entries: a
// transient fault is recovered (storage retries reads and rewindable writes,
// the job redoes an entry whose shard upload broke), a permanent one fails its
// entry only, and nothing partial is ever left visible.
func TestFaultMatrix(t *testing.T) {
	permanent := storage.Permanent(errors.New("access denied"))
	for _, tc := range []struct {
		name   string
		fault  *storage.Fault
		failed string // the entry that must fail, or ""
	}{
		{"transient stat", &storage.Fault{Op: storage.FaultStat, Key: "a.npy", Times: 1}, ""},
		{"transient open", &storage.Fault{Op: storage.FaultOpen, Key: "b.npy", Times: 2}, ""},
		{"transient read mid-body", &storage.Fault{Op: storage.FaultRead, Key: "c.npy", Times: 1, AfterBytes: 5000}, ""},
		{"transient shard write", &storage.Fault{Op: storage.FaultWrite, Key: "b.npy/part-00001", Times: 1, AfterBytes: 100}, ""},
		{"transient shard close", &storage.Fault{Op: storage.FaultClose, Key: "a.npy/part-00000", Times: 1}, ""},
		{"lost commit response", &storage.Fault{Op: storage.FaultCommit, Key: "c.npy/part-00002", Times: 1}, ""},
		{"transient sidecar write", &storage.Fault{Op: storage.FaultClose, Key: "b.npy/metadata.json", Times: 2}, ""},
		{"permanent read", &storage.Fault{Op: storage.FaultRead, Key: "a.npy", AfterBytes: 100, Err: permanent}, "a.npy"},
		{"permanent shard write", &storage.Fault{Op: storage.FaultWrite, Key: "b.npy/part-00001", Err: permanent}, "b.npy"},
		{"never-clearing transient write", &storage.Fault{Op: storage.FaultWrite, Key: "c.npy/part-00000"}, "c.npy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var entries []Entry
			for _, n := range []string{"a.npy", "b.npy", "c.npy"} {
				writeNpy(t, filepath.Join(dir, n), 20000)
				entries = append(entries, Entry{URI: filepath.Join(dir, n), rel: n})
			}
			items, err := Plan(entries, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := tc.fault
			out := filepath.Join(dir, "out")
			r, rep := runOnce(t, context.Background(), items, Options{
				Out: out, Workers: 2,
				CSV:      convert.Options{Header: true, Compression: "gzip", ShardSize: 100 << 10},
				Decorate: func(b *storage.Bucket) *storage.Bucket { return storage.WithFaults(b, f) },
			})
			if f.Injected() == 0 {
				t.Fatalf("fault never hit (%d calls)", f.Calls())
			}
			for _, e := range rep.Entries {
				want := StatusExported
				if e.ID == tc.failed {
					want = StatusFailed
				}
				if e.Status != want {
					t.Errorf("%s: %s (%s), want %s", e.ID, e.Status, e.Error, want)
				}
				exp := filepath.Join(out, e.ID)
				names, _ := filepath.Glob(filepath.Join(exp, "*"))
				if e.Status == StatusFailed {
					if e.Permanent {
						t.Errorf("%s: a storage failure reported as permanent", e.ID)
					}
					if len(names) > 0 {
						t.Errorf("%s failed but left %v", e.ID, names)
					}
					continue
				}
				if _, err := Verify(context.Background(), exp); err != nil {
					t.Errorf("%s: verify: %v", e.ID, err)
				}
				sc, _ := convert.ReadSidecar(context.Background(), outDir{b: r.out, prefix: r.outKey + e.ID + "/"})
				if sc != nil && len(names) != len(sc.Shards)+1 {
					t.Errorf("%s: %d objects for %d shards: %v", e.ID, len(names), len(sc.Shards), names)
				}
			}
			failed, retryable := rep.Outcome()
			if (tc.failed != "") != (failed == 1) || failed != retryable {
				t.Errorf("outcome: %d failed, %d retryable", failed, retryable)
			}
		})
	}
}

// A store without ETags: the source's sha256 tells whether it changed.
func TestSourceWithoutETagIsTrackedBySHA256(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.npy")
	writeNpy(t, src, 100)
	items, err := Plan([]Entry{{URI: src, rel: "a.npy"}}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		_, rep := runOnce(t, context.Background(), items, Options{
			Out: filepath.Join(dir, "out"), Workers: 1,
			CSV:      convert.Options{Columns: convert.DefaultColumns, Header: true, Compression: "none", ShardSize: convert.DefaultShardSize},
			Decorate: storage.WithoutETags,
		})
		return rep.Entries[0].Status
	}
	if s := run(); s != StatusExported {
		t.Fatalf("first run: %s", s)
	}
	if s := run(); s != StatusSkipped {
		t.Fatalf("second run: %s", s)
	}
	b, _ := os.ReadFile(src)
	b[len(b)-1] ^= 0x40 // the same size, another last value
	os.WriteFile(src, b, 0o644)
	if s := run(); s != StatusExported {
		t.Fatalf("run after the source changed: %s", s)
	}
}

// An interrupted run still reports every entry of its share, the ones it
// never started as failed (retryable), with the error key always present.
func TestInterruptedRunReportsEveryEntry(t *testing.T) {
	dir := t.TempDir()
	var entries []Entry
	for _, n := range []string{"a.npy", "b.npy"} {
		writeNpy(t, filepath.Join(dir, n), 10)
		entries = append(entries, Entry{URI: filepath.Join(dir, n), rel: n})
	}
	items, err := Plan(entries, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, rep := runOnce(t, ctx, items, Options{Out: filepath.Join(dir, "out"), Workers: 1,
		CSV: convert.Options{Columns: convert.DefaultColumns, Compression: "none"}})
	if !rep.Interrupted || len(rep.Entries) != 2 || rep.Totals.Failed != 2 || rep.ShardCount != 1 {
		t.Fatalf("report %+v", rep)
	}
	for _, e := range rep.Entries {
		if e.Status != StatusFailed || e.Permanent || e.Error == "" {
			t.Errorf("%+v", e)
		}
	}
}

// runOnce runs items with opt (logging nowhere) and returns the runner, open
// until the test ends, and its report.
func runOnce(t *testing.T, ctx context.Context, items []Item, opt Options) (*Runner, *Report) {
	t.Helper()
	opt.Log = zerolog.Nop()
	r, err := NewRunner(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	rep, err := r.Run(ctx, "test", items)
	if err != nil {
		t.Fatal(err)
	}
	return r, rep
}
