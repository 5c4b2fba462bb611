package main

// What operators see: logs, dry runs, inspect, version, the Redshift manifest.

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// npyBytes is a little-endian float32 .npy file.
func npyBytes(shape string, vals []float32) []byte {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
	hdr += strings.Repeat(" ", (64-(10+len(hdr)+1)%64)%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	for _, v := range vals {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(v))
	}
	return b.Bytes()
}

// writeNpz writes an uncompressed .npz of the named members, in order.
func writeNpz(t *testing.T, path string, members ...[2]string) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m[0] + ".npy", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m[1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logEvents parses stderr as JSON lines; every line must be one event.
func logEvents(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not one JSON event: %q", line)
		}
		evs = append(evs, ev)
	}
	return evs
}

func eventWith(evs []map[string]any, message string) map[string]any {
	for _, ev := range evs {
		if ev["message"] == message {
			return ev
		}
	}
	return nil
}

func TestJSONLogEventsCarryTheRunAndCheckpointFields(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.npy")
	os.WriteFile(good, npyBytes("(2, 2)", []float32{1, 2, 3, 4}), 0o644)
	bad := filepath.Join(dir, "bad.npy")
	os.WriteFile(bad, npyBytes("(100,)", []float32{1, 2}), 0o644) // data ends early
	out := filepath.Join(dir, "out")
	code, _, stderr := ckpt2csv(t, "convert", good, bad, "--out", out, "--log-format", "json")
	if code != exitPermanent {
		t.Fatalf("exit %d, want %d: %s", code, exitPermanent, stderr)
	}
	evs := logEvents(t, stderr)
	runID, _ := evs[0]["run_id"].(string)
	if runID == "" {
		t.Fatalf("first event has no run_id: %v", evs[0])
	}
	for _, ev := range evs {
		if ev["run_id"] != runID || ev["shard_index"] != 0.0 || ev["time"] == nil || ev["level"] == nil {
			t.Errorf("event without the run's fields: %v", ev)
		}
	}
	exp := eventWith(evs, "exported")
	if exp == nil {
		t.Fatalf("no exported event in %s", stderr)
	}
	for k, want := range map[string]any{"checkpoint": strings.TrimPrefix(good, "/"), "uri": good, "format": "numpy",
		"tensors": 1.0, "values": 4.0, "shards": 1.0, "level": "info"} {
		if exp[k] != want {
			t.Errorf("exported event %s = %v, want %v", k, exp[k], want)
		}
	}
	if b, _ := exp["bytes"].(float64); b <= 0 {
		t.Errorf("exported event bytes = %v", exp["bytes"])
	}
	if d, ok := exp["duration"].(float64); !ok || d <= 0 || d > 60 {
		t.Errorf("exported event duration = %v (seconds)", exp["duration"])
	}
	var failed map[string]any
	for _, ev := range evs {
		if ev["level"] == "error" {
			if failed != nil {
				t.Errorf("two error events: %v %v", failed, ev)
			}
			failed = ev
		}
	}
	if failed == nil {
		t.Fatalf("no error event in %s", stderr)
	}
	msg, _ := failed["message"].(string)
	errField, _ := failed["error"].(string)
	if failed["checkpoint"] != strings.TrimPrefix(bad, "/") || failed["format"] != "numpy" || failed["permanent"] != true ||
		!strings.Contains(msg, bad) || errField == "" || !strings.Contains(msg, errField) {
		t.Errorf("error event: %v", failed)
	}
	done := eventWith(evs, "done")
	if done == nil || done["exported"] != 1.0 || done["failed"] != 1.0 || done["values"] != 4.0 {
		t.Errorf("done event: %v", done)
	}
	// the run report names the same run
	reports, _ := filepath.Glob(filepath.Join(out, "_reports", runID+".json"))
	if len(reports) != 1 {
		t.Errorf("no report %s.json", runID)
	}
}

func TestConsoleLogIsPlainTextOffATerminal(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	os.WriteFile(src, npyBytes("(3,)", []float32{1, 2, 3}), 0o644)
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", filepath.Join(dir, "out"), "--log-format", "console")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "{\"") || strings.Contains(stderr, "\x1b") {
		t.Errorf("console log holds JSON or colour codes: %q", stderr)
	}
	for _, want := range []string{"INF", "exported", "checkpoint=", "format=numpy", "values=3", "run_id="} {
		if !strings.Contains(stderr, want) {
			t.Errorf("console log lacks %q: %s", want, stderr)
		}
	}
}

// tree lists every file (not directory) under dir with its size and modification time.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, _ := d.Info()
		files[p] = info.ModTime().Format(time.RFC3339Nano) + " " + info.Mode().String() + " " + strconv.FormatInt(info.Size(), 10)
		return nil
	})
	return files
}

func TestDryRunPrintsThePlanAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, n+".npy"), npyBytes("(2,)", []float32{1, 2}), 0o644)
	}
	manifest := filepath.Join(dir, "manifest.txt")
	os.WriteFile(manifest, []byte("a.npy\nb.npy second\n"), 0o644)
	out := filepath.Join(dir, "out")

	// Nothing exported yet: everything would be exported, OUT is not even created.
	code, stdout, stderr := ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--dry-run", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"a.npy", "second", "export", "2 of 2 entries", "2 to export, 0 up to date"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("dry run created OUT: %v", err)
	}
	if strings.Contains(stderr, "\"exported\"") {
		t.Errorf("dry run logged an export: %s", stderr)
	}

	// After a real run, a dry run sees the exports up to date and the new entry.
	if code, _, stderr := ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--log-format", "json"); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	os.WriteFile(manifest, []byte("a.npy\nb.npy second\nc.npy\n"), 0o644)
	before := tree(t, dir)
	code, stdout, stderr = ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--dry-run", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "1 to export, 2 up to date") || !strings.Contains(stdout, "skip (up to date)") {
		t.Errorf("plan after a run:\n%s", stdout)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "c.npy") && !strings.Contains(line, "export") {
			t.Errorf("new entry not planned for export: %q", line)
		}
	}
	after := tree(t, dir)
	if len(after) != len(before) {
		t.Errorf("dry run changed the tree: %d files before, %d after", len(before), len(after))
	}
	for p, st := range before {
		if after[p] != st {
			t.Errorf("dry run touched %s", p)
		}
	}

	// This index's share: entry k goes to index k mod count.
	code, stdout, _ = ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--dry-run",
		"--shard-index", "1", "--shard-count", "2", "--log-format", "json")
	if code != exitOK || !strings.Contains(stdout, "1 of 3 entries are the share of shard index 1 of 2") ||
		!strings.Contains(stdout, "second") || strings.Contains(stdout, "c.npy") {
		t.Errorf("share of index 1 of 2 (exit %d):\n%s", code, stdout)
	}

	// A missing source shows as an error and sets the exit code a run would have.
	os.WriteFile(manifest, []byte("a.npy\nmissing.npy\n"), 0o644)
	before = tree(t, dir)
	code, stdout, _ = ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--dry-run", "--log-format", "json")
	if code != exitPermanent || !strings.Contains(stdout, "error: ") {
		t.Errorf("dry run with a missing source: exit %d\n%s", code, stdout)
	}
	if after := tree(t, dir); len(after) != len(before) {
		t.Errorf("dry run with an error wrote files: %d before, %d after", len(before), len(after))
	}
}

func TestInspectPrintsATableAndJSON(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.npz")
	writeNpz(t, src,
		[2]string{"features.0.weight", string(npyBytes("(2, 3)", []float32{1, 2, 3, 4, 5, 6}))},
		[2]string{"features.0.bias", string(npyBytes("(2,)", []float32{7, 8}))},
		[2]string{"step", string(npyBytes("()", []float32{9}))},
		[2]string{"evil\x1b]0;pwned\x07", string(npyBytes("(1,)", []float32{0}))},
	)
	code, stdout, stderr := ckpt2csv(t, "inspect", src)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := [][]string{
		{"NAME", "DTYPE", "SHAPE", "NUMEL", "LAYER", "PARAM", "LAYER", "TYPE"},
		{"features.0.weight", "float32", "[2,", "3]", "6", "features.0", "weight"},
		{"features.0.bias", "float32", "[2]", "2", "features.0", "bias"},
		{"step", "float32", "[]", "1", "step"},
		{`"evil\x1b]0;pwned\a"`, "float32", "[1]", "1", `"evil\x1b]0;pwned\a"`},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("table:\n%s", stdout)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("a tensor name's escape sequence reached the terminal")
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "numpy, 4 tensors, 10 values") {
		t.Errorf("summary line %q", last)
	}

	code, stdout, stderr = ckpt2csv(t, "inspect", "--json", src)
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, stderr)
	}
	var doc struct {
		URI, Format string
		Size        int64
		Values      int64
		Tensors     []struct {
			Name      string
			DType     string `json:"dtype"`
			Shape     []int64
			Numel     int64
			LayerName string `json:"layer_name"`
			ParamType string `json:"param_type"`
		}
		Skipped  []any
		Metadata map[string]any
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	for _, k := range []string{"skipped", "metadata", "tensors"} {
		if string(raw[k]) == "null" {
			t.Errorf("%s is null, want an empty list or object", k)
		}
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.URI != src || doc.Format != "numpy" || doc.Values != 10 || len(doc.Tensors) != 4 || doc.Size <= 0 {
		t.Errorf("--json: %+v", doc)
	}
	w := doc.Tensors[0]
	if w.Name != "features.0.weight" || w.DType != "float32" || len(w.Shape) != 2 || w.Shape[1] != 3 || w.Numel != 6 ||
		w.LayerName != "features.0" || w.ParamType != "weight" {
		t.Errorf("first tensor %+v", w)
	}
	if s := doc.Tensors[2]; s.Shape == nil || len(s.Shape) != 0 || s.Numel != 1 {
		t.Errorf("scalar %+v: want shape [] and numel 1", s)
	}
	if doc.Tensors[3].Name != "evil\x1b]0;pwned\x07" {
		t.Errorf("JSON must keep the true name, got %q", doc.Tensors[3].Name)
	}

	if code, _, _ := ckpt2csv(t, "inspect"); code != exitUsage {
		t.Errorf("inspect without a source: exit %d", code)
	}
	bad := filepath.Join(dir, "bad.npy")
	os.WriteFile(bad, npyBytes("(100,)", []float32{1}), 0o644)
	if code, _, stderr := ckpt2csv(t, "inspect", bad); code != exitPermanent && !strings.Contains(stderr, "bad.npy") {
		t.Errorf("inspect of a truncated file: exit %d: %s", code, stderr)
	}
}

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "1.4.2", "0123abc"
	code, stdout, _ := ckpt2csv(t, "version")
	if want := "ckpt2csv 1.4.2 (commit 0123abc, " + runtime.Version() + ")\n"; code != exitOK || stdout != want {
		t.Errorf("version: exit %d %q, want %q", code, stdout, want)
	}
}

func TestRedshiftManifestListsEveryShard(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	vals := make([]float32, 5000)
	for i := range vals {
		vals[i] = float32(i) * 0.37
	}
	os.WriteFile(src, npyBytes("(5000,)", vals), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", out, "--shard-size", "20KiB", "--redshift-manifest", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	exp := filepath.Join(out, strings.TrimPrefix(src, "/"))
	sc := readSidecar(t, filepath.Join(exp, "metadata.json"))
	if len(sc.Shards) < 3 {
		t.Fatalf("want several shards, got %d", len(sc.Shards))
	}
	readManifest := func() (m struct {
		Entries []struct {
			URL       string `json:"url"`
			Mandatory bool   `json:"mandatory"`
			Meta      struct {
				ContentLength int64 `json:"content_length"`
			} `json:"meta"`
		} `json:"entries"`
	}, err error) {
		b, err := os.ReadFile(filepath.Join(exp, "redshift.manifest"))
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			err = dec.Decode(&m)
		}
		return m, err
	}
	m, err := readManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != len(sc.Shards) {
		t.Fatalf("%d manifest entries for %d shards", len(m.Entries), len(sc.Shards))
	}
	for i, e := range m.Entries {
		st, err := os.Stat(filepath.Join(exp, sc.Shards[i].Path))
		if err != nil {
			t.Fatal(err)
		}
		if e.URL != "file://"+filepath.Join(exp, sc.Shards[i].Path) || !e.Mandatory ||
			e.Meta.ContentLength != st.Size() || e.Meta.ContentLength != sc.Shards[i].StoredBytes {
			t.Errorf("entry %d: %+v (shard %+v, %d bytes on disk)", i, e, sc.Shards[i], st.Size())
		}
	}
	// written before the sidecar, which stays last
	ms, _ := os.Stat(filepath.Join(exp, "redshift.manifest"))
	ss, _ := os.Stat(filepath.Join(exp, "metadata.json"))
	if ms.ModTime().After(ss.ModTime()) {
		t.Errorf("redshift.manifest written after metadata.json")
	}
	if code, _, stderr := ckpt2csv(t, "verify", exp); code != exitOK {
		t.Errorf("verify with a manifest beside the shards: exit %d: %s", code, stderr)
	}

	// A forced export without the flag removes the manifest it would leave stale.
	if code, _, stderr := ckpt2csv(t, "convert", src, "--out", out, "--shard-size", "20KiB", "--force", "--log-format", "json"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := readManifest(); !os.IsNotExist(err) {
		t.Errorf("manifest left beside an export made without --redshift-manifest: %v", err)
	}
	// An up-to-date export gets its manifest from the sidecar, without a new export.
	before := tree(t, exp)
	code, _, stderr = ckpt2csv(t, "convert", src, "--out", out, "--shard-size", "20KiB", "--redshift-manifest", "--log-format", "json")
	if code != exitOK || !strings.Contains(stderr, "up to date") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if m, err := readManifest(); err != nil || len(m.Entries) != len(sc.Shards) {
		t.Errorf("manifest for an up-to-date export: %v %+v", err, m)
	}
	for p, st := range before {
		if tree(t, exp)[p] != st {
			t.Errorf("skipped export rewrote %s", p)
		}
	}
}
