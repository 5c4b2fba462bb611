// End-to-end runs of the job on every storage backend: mem, file, and the
// loopback S3 / GCS / Azure servers when CKPT2CSV_TEST_S3 / _GCS / _AZURE are
// set (scripts/storage-servers.sh starts them and exports the variables).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ckpt2csv/job"
	"ckpt2csv/storage"
)

type e2eBackend struct {
	name string
	root func(t *testing.T) string // a fresh, empty directory URI ending in "/"
}

func e2eBackends() []e2eBackend {
	bs := []e2eBackend{
		{"mem", func(t *testing.T) string { return "mem://e2e/" + e2eUniq(t) + "/" }},
		{"file", func(t *testing.T) string { return t.TempDir() + "/" }},
	}
	for _, c := range []struct{ name, env string }{
		{"s3", "CKPT2CSV_TEST_S3"}, {"gcs", "CKPT2CSV_TEST_GCS"}, {"azure", "CKPT2CSV_TEST_AZURE"},
	} {
		bs = append(bs, e2eBackend{c.name, func(t *testing.T) string {
			u := os.Getenv(c.env)
			if u == "" {
				t.Skipf("%s not set (scripts/storage-servers.sh starts loopback servers)", c.env)
			}
			return e2eWithKey(u, "e2e/"+e2eUniq(t)+"/")
		}})
	}
	return bs
}

func e2eUniq(t *testing.T) string {
	return strings.NewReplacer("/", "-").Replace(t.Name()) + "-" + fmt.Sprint(time.Now().UnixNano())
}

// withKey puts key into a bucket URL (or appends it to a directory URI), before any query.
func e2eWithKey(uri, key string) string {
	base, query, _ := strings.Cut(uri, "?")
	u := strings.TrimSuffix(base, "/") + "/" + key
	if query != "" {
		u += "?" + query
	}
	return u
}

// npyBytes is a float32 .npy holding n values v(i).
func e2eNpyBytes(shape string, n int, v func(i int) float32) []byte {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
	hdr += strings.Repeat(" ", (64-(10+len(hdr)+1)%64)%64) + "\n"
	var b bytes.Buffer
	b.Grow(10 + len(hdr) + 4*n)
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	var w [4]byte
	for i := range n {
		binary.LittleEndian.PutUint32(w[:], math.Float32bits(v(i)))
		b.Write(w[:])
	}
	return b.Bytes()
}

func e2ePut(t *testing.T, uri string, data []byte) {
	t.Helper()
	b, key, err := storage.OpenURI(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WriteAll(context.Background(), key, data, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
}

func e2eList(t *testing.T, uri string) (*storage.Bucket, string, []string) {
	t.Helper()
	b, key, err := storage.OpenURI(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if !strings.HasSuffix(key, "/") {
		key += "/"
	}
	keys, err := b.List(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b, key, keys
}

// reports reads every run report under OUT/_reports/.
func e2eReports(t *testing.T, out string) []job.Report {
	t.Helper()
	b, prefix, keys := e2eList(t, e2eWithKey(out, "_reports/"))
	_ = prefix
	var reps []job.Report
	for _, k := range keys {
		data, err := b.ReadAll(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		var r job.Report
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("report %s: %v", k, err)
		}
		reps = append(reps, r)
	}
	return reps
}

// e2eStatuses maps each source (its URI without the query) to the statuses
// the reports give it, and to its output ID.
func e2eStatuses(reps []job.Report) (map[string][]string, map[string]string) {
	st, ids := map[string][]string{}, map[string]string{}
	for _, r := range reps {
		for _, e := range r.Entries {
			u, _, _ := strings.Cut(e.URI, "?")
			st[u] = append(st[u], e.Status)
			ids[u] = e.ID
		}
	}
	return st, ids
}

func TestEndToEndOnEveryBackend(t *testing.T) {
	for _, be := range e2eBackends() {
		t.Run(be.name, func(t *testing.T) {
			root := be.root(t)
			src := e2eWithKey(root, "src/")
			_, srcKey, _ := e2eList(t, src)
			names := []string{"a.npy", "b.npy", "c.npy", "d.npy", "e.npy", "sub/f.npy", "sub/g.npy"}
			for i, n := range names {
				e2ePut(t, e2eWithKey(src, n), e2eNpyBytes(fmt.Sprintf("(%d, 3)", 5+i), (5+i)*3, func(j int) float32 { return float32(i*1000+j) / 8 }))
			}
			e2ePut(t, e2eWithKey(src, "manifest.txt"), []byte("# every checkpoint beside the manifest\n*.npy\nsub/*.npy\n"))
			srcs := make([]string, len(names))
			for i, n := range names {
				srcs[i], _, _ = strings.Cut(storage.Redact(e2eWithKey(src, n)), "?")
			}
			_ = srcKey
			out := e2eWithKey(root, "out")
			manifest := e2eWithKey(src, "manifest.txt")
			common := []string{"--manifest", manifest, "--out", out, "--log-format", "json", "--shard-size", "64"}

			// Four Indexed-Job pods over one manifest: each entry exported exactly once.
			for i := range 4 {
				args := append([]string{"run"}, common...)
				args = append(args, "--shard-index", fmt.Sprint(i), "--shard-count", "4")
				if code, _, stderr := ckpt2csv(t, args...); code != exitOK {
					t.Fatalf("index %d: exit %d\n%s", i, code, stderr)
				}
			}
			st, idOf := e2eStatuses(e2eReports(t, out))
			var ids []string
			for _, s := range srcs {
				if !slices.Equal(st[s], []string{"exported"}) {
					t.Errorf("entry %s: statuses %v across the 4 indexes, want exactly one export", s, st[s])
				}
				ids = append(ids, idOf[s])
			}
			if len(st) != len(srcs) {
				t.Fatalf("reports name %d entries, want %d: %v", len(st), len(srcs), st)
			}
			// Every export verifies against its sidecar.
			for _, id := range ids {
				if code, stdout, stderr := ckpt2csv(t, "verify", e2eWithKey(out, id)); code != exitOK {
					t.Fatalf("verify %s: exit %d\n%s%s", id, code, stdout, stderr)
				}
			}
			_, _, before := e2eList(t, out)
			etags := e2eObjectETags(t, out, before)

			// A rerun skips everything and rewrites nothing.
			args := append([]string{"run"}, common...)
			seen := e2eReports(t, out)
			if code, _, stderr := ckpt2csv(t, args...); code != exitOK {
				t.Fatalf("rerun: exit %d\n%s", code, stderr)
			}
			reps := e2eReports(t, out)
			last := e2eLatest(t, reps, seen)
			if last.Totals.Skipped != len(ids) || last.Totals.Exported != 0 {
				t.Fatalf("rerun: %+v, want all %d skipped", last.Totals, len(ids))
			}
			if got := e2eObjectETags(t, out, before); !e2eMapsEqual(got, etags) {
				t.Errorf("rerun rewrote objects")
			}

			// --force redoes every export.
			seen = e2eReports(t, out)
			if code, _, stderr := ckpt2csv(t, append(args, "--force")...); code != exitOK {
				t.Fatalf("--force: exit %d\n%s", code, stderr)
			}
			if last := e2eLatest(t, e2eReports(t, out), seen); last.Totals.Exported != len(ids) {
				t.Fatalf("--force: %+v, want all %d exported", last.Totals, len(ids))
			}
			for _, id := range ids[:2] {
				if code, stdout, stderr := ckpt2csv(t, "verify", e2eWithKey(out, id)); code != exitOK {
					t.Fatalf("verify after --force %s: exit %d\n%s%s", id, code, stdout, stderr)
				}
			}

			// A corrupt checkpoint fails that entry only, permanently (exit 3), leaving no output.
			e2ePut(t, e2eWithKey(src, "zz-bad.npy"), []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',"))
			seen = e2eReports(t, out)
			code, _, stderr := ckpt2csv(t, args...)
			if code != exitPermanent {
				t.Fatalf("corrupt entry: exit %d, want %d\n%s", code, exitPermanent, stderr)
			}
			last = e2eLatest(t, e2eReports(t, out), seen)
			if last.Totals.Failed != 1 || last.Totals.Skipped != len(ids) {
				t.Fatalf("corrupt entry: %+v, want 1 failed and %d skipped", last.Totals, len(ids))
			}
			for _, e := range last.Entries {
				if e.Status != "failed" {
					continue
				}
				if !e.Permanent || !strings.Contains(e.URI, "zz-bad.npy") {
					t.Errorf("failed entry %+v, want zz-bad.npy, permanent", e)
				}
				if _, _, keys := e2eList(t, e2eWithKey(out, e.ID+"/")); len(keys) != 0 {
					t.Fatalf("a failed export left %q", keys)
				}
			}
		})
	}
}

// e2eLatest is the one report that is not in before (by run ID).
func e2eLatest(t *testing.T, reps, before []job.Report) job.Report {
	t.Helper()
	var fresh []job.Report
	for _, r := range reps {
		if !slices.ContainsFunc(before, func(b job.Report) bool { return b.RunID == r.RunID }) {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("%d new run reports, want 1", len(fresh))
	}
	return fresh[0]
}

func e2eObjectETags(t *testing.T, dir string, keys []string) map[string]string {
	t.Helper()
	b, _, _ := e2eList(t, dir)
	m := map[string]string{}
	for _, k := range keys {
		if strings.Contains(k, "/_reports/") {
			continue
		}
		a, err := b.Stat(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		m[k] = a.ETag
	}
	return m
}

func e2eMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A source on a store that does not answer is a retryable failure (exit 1).
func TestUnreachableStoreIsRetryable(t *testing.T) {
	if os.Getenv("CKPT2CSV_TEST_S3") == "" {
		t.Skip("CKPT2CSV_TEST_S3 not set")
	}
	out := t.TempDir()
	src := "s3://ckpt2csv/x.npy?endpoint=http://127.0.0.1:9&use_path_style=true&region=us-east-1"
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", out, "--log-format", "json")
	if code != exitRetryable {
		t.Fatalf("exit %d, want %d\n%s", code, exitRetryable, stderr)
	}
}

// SIGTERM in the middle of an export: exit 143, no sidecar, no torn shard, no
// incomplete multipart upload or uncommitted blob; the same run again completes.
func TestSIGTERMMidExportLeavesNothingTorn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ckpt2csv")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, be := range e2eBackends() {
		if be.name == "mem" {
			continue // a mem:// bucket lives in one process
		}
		t.Run(be.name, func(t *testing.T) {
			root := be.root(t)
			const n = 6 << 20
			e2ePut(t, e2eWithKey(root, "src/big.npy"), e2eNpyBytes(fmt.Sprintf("(%d,)", n), n, func(i int) float32 { return float32(i) * 1.5 }))
			out := e2eWithKey(root, "out")
			args := []string{"convert", e2eWithKey(root, "src/big.npy"), "--out", out, "--log-format", "json", "--shard-size", "4MiB"}
			cmd := exec.Command(bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the first shard to be published, then stop the job.
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if _, _, keys := e2eList(t, out); slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "/part-") }) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			start := time.Now()
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != exitTerminated {
				t.Fatalf("exit %d (%v) after SIGTERM, want %d\n%s", code, err, exitTerminated, stderr.String())
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s to stop", took)
			}
			b, _, keys := e2eList(t, out)
			for _, k := range keys {
				if strings.HasSuffix(k, "metadata.json") {
					t.Errorf("sidecar %s written by an interrupted export", k)
				}
				if !strings.Contains(k, "/_reports/") {
					t.Errorf("%s left by an interrupted export", k)
				}
				if strings.HasSuffix(k, ".csv.gz") {
					data, err := b.ReadAll(context.Background(), k)
					if err == nil {
						_, err = e2eGzipCheck(data)
					}
					if err != nil {
						t.Errorf("torn shard %s: %v", k, err)
					}
				}
			}
			t.Logf("after SIGTERM: %d objects under OUT: %q", len(keys), keys)
			_, outKey, _ := e2eList(t, out)
			if pending, err := b.PendingUploads(context.Background(), outKey); err != nil || len(pending) > 0 {
				t.Errorf("uploads left behind: %q, %v", pending, err)
			}

			// The same run again completes and verifies.
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			_, srcKey, _ := e2eList(t, e2eWithKey(root, "src/"))
			if code, stdout, stderr := ckpt2csv(t, "verify", e2eWithKey(out, srcKey+"big.npy")); code != exitOK {
				t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
			}
		})
	}
}

func e2eGzipCheck(data []byte) (int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, zr)
}

// e2eSafetensors builds a safetensors file of n float32 tensors of m values each.
func e2eSafetensors(n, m int) []byte {
	var hdr strings.Builder
	hdr.WriteString("{")
	for i := range n {
		if i > 0 {
			hdr.WriteString(",")
		}
		fmt.Fprintf(&hdr, `"layers.%d.weight":{"dtype":"F32","shape":[%d],"data_offsets":[%d,%d]}`, i, m, i*m*4, (i+1)*m*4)
	}
	hdr.WriteString("}")
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(hdr.Len()))
	b.WriteString(hdr.String())
	b.Write(make([]byte, n*m*4))
	return b.Bytes()
}

// inspect of a large remote checkpoint fetches its headers, not its data.
func TestInspectFetchesOnlyHeaders(t *testing.T) {
	files := map[string][]byte{
		"big.safetensors": e2eSafetensors(200, 64<<10),                                              // 50 MiB
		"big.npy":         e2eNpyBytes("(4096, 2048)", 4096*2048, func(i int) float32 { return 0 }), // 32 MiB
	}
	for _, be := range e2eBackends() {
		t.Run(be.name, func(t *testing.T) {
			root := be.root(t)
			for name, data := range files {
				uri := e2eWithKey(root, name)
				e2ePut(t, uri, data)
				code, stdout, stderr := ckpt2csv(t, "inspect", "--json", uri)
				if code != exitOK {
					t.Fatalf("inspect %s: exit %d\n%s", name, code, stderr)
				}
				var got struct {
					Size      int64 `json:"size"`
					BytesRead int64 `json:"bytes_read"`
					Requests  int64 `json:"requests"`
				}
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatalf("inspect --json: %v\n%s", err, stdout)
				}
				t.Logf("inspect %s (%d MiB): %d requests, %d KiB read", name, got.Size>>20, got.Requests, got.BytesRead>>10)
				if got.Requests > 2 || got.BytesRead > 2<<20 {
					t.Errorf("inspect %s: %d requests, %d bytes read; want at most 2 requests and 2 MiB", name, got.Requests, got.BytesRead)
				}
			}
		})
	}
}
