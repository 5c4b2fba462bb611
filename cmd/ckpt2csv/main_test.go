package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ckpt2csv/convert"
)

// ckpt2csv runs the command in-process and returns exit code, stdout, stderr.
func ckpt2csv(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeNpy writes a little-endian float32 .npy file.
func writeNpy(t *testing.T, path string, shape string, vals []float32) {
	t.Helper()
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
	pad := 64 - (10+len(hdr)+1)%64
	hdr += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	for _, v := range vals {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(v))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSidecar(t *testing.T, path string) *convert.Sidecar {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc convert.Sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	return &sc
}

func TestConvertVerifyAndTamper(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	writeNpy(t, src, "(2, 3)", []float32{0.1, -2.5, 3e-8, float32(math.Inf(-1)), 0, 1})
	out := filepath.Join(dir, "out")
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", out, "--compression", "none", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	id := strings.TrimPrefix(src, "/")
	exp := filepath.Join(out, id)
	shard, err := os.ReadFile(filepath.Join(exp, "part-00000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "layer_index,layer_name,param_type,tensor,flat_index,value\n" +
		"0,,w,w,0,0.1\n0,,w,w,1,-2.5\n0,,w,w,2,3e-08\n0,,w,w,3,-Inf\n0,,w,w,4,0\n0,,w,w,5,1\n"
	if string(shard) != want {
		t.Errorf("shard:\n%s\nwant:\n%s", shard, want)
	}
	sc := readSidecar(t, filepath.Join(exp, "metadata.json"))
	if sc.Source.Format != "numpy" || sc.Totals.Values != 6 || sc.Tensors[0].Shape[1] != 3 {
		t.Errorf("sidecar %+v", sc)
	}
	if code, stdout, stderr := ckpt2csv(t, "verify", exp); code != exitOK {
		t.Fatalf("verify exit %d: %s %s", code, stdout, stderr)
	}
	os.WriteFile(filepath.Join(exp, "part-00000.csv"), bytes.Replace(shard, []byte(",0.1\n"), []byte(",0.10000001\n"), 1), 0o644)
	if code, _, _ := ckpt2csv(t, "verify", exp); code != exitPermanent {
		t.Errorf("verify of an altered shard: exit %d", code)
	}
	os.Remove(filepath.Join(exp, "part-00000.csv"))
	if code, _, _ := ckpt2csv(t, "verify", exp); code == exitOK {
		t.Errorf("verify with a shard missing passed")
	}
}

func TestRunSkipsUpToDateAndForceRedoes(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "a.npy"), "(3,)", []float32{1, 2, 3})
	writeNpy(t, filepath.Join(dir, "b.npy"), "(1,)", []float32{4})
	os.WriteFile(filepath.Join(dir, "manifest.txt"), []byte("# two\na.npy\nb.npy second\n"), 0o644)
	out := filepath.Join(dir, "out")
	run := func(extra ...string) map[string]string {
		t.Helper()
		code, _, stderr := ckpt2csv(t, append([]string{"run", "--manifest", filepath.Join(dir, "manifest.txt"), "--out", out, "--log-format", "json"}, extra...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		reports, _ := filepath.Glob(filepath.Join(out, "_reports", "*.json"))
		status := map[string]string{}
		for _, r := range reports {
			b, _ := os.ReadFile(r)
			var rep struct {
				Entries []struct{ ID, Status, Finished string }
			}
			json.Unmarshal(b, &rep)
			for _, e := range rep.Entries {
				status[e.ID] = e.Status
			}
			os.Remove(r)
		}
		return status
	}
	if s := run(); s["a.npy"] != "exported" || s["second"] != "exported" {
		t.Errorf("first run: %v", s)
	}
	if s := run(); s["a.npy"] != "skipped" || s["second"] != "skipped" {
		t.Errorf("second run: %v", s)
	}
	if s := run("--force"); s["a.npy"] != "exported" {
		t.Errorf("forced run: %v", s)
	}
	if s := run("--compression", "zstd"); s["a.npy"] != "exported" {
		t.Errorf("run with other options: %v", s)
	}
	if _, err := os.Stat(filepath.Join(out, "a.npy", "part-00000.csv.gz")); !os.IsNotExist(err) {
		t.Errorf("stale gzip shard left beside the zstd export: %v", err)
	}
}

// A sharded checkpoint is out of date when any shard changes, not only its index.
func TestRunRedoesAShardedCheckpointWhenAShardChanges(t *testing.T) {
	dir := t.TempDir()
	src := "../../convert/safetensors/testdata/sharded"
	for _, name := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "manifest.txt"), []byte("model.safetensors.index.json m\n"), 0o644)
	out := filepath.Join(dir, "out")
	run := func() string {
		t.Helper()
		code, stdout, stderr := ckpt2csv(t, "run", "--manifest", filepath.Join(dir, "manifest.txt"), "--out", out, "--log-format", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, s := range []string{"up to date, skipped", "exported"} {
			if strings.Contains(stdout+stderr, s) {
				return s
			}
		}
		return stdout + stderr
	}
	if s := run(); s != "exported" {
		t.Fatalf("first run: %s", s)
	}
	var sc struct {
		Source struct{ Parts []struct{ Path string } }
	}
	b, _ := os.ReadFile(filepath.Join(out, "m", "metadata.json"))
	json.Unmarshal(b, &sc)
	if len(sc.Source.Parts) != 2 || sc.Source.Parts[1].Path != "model-00002-of-00002.safetensors" {
		t.Fatalf("source parts %+v", sc.Source.Parts)
	}
	if s := run(); s != "up to date, skipped" {
		t.Fatalf("second run: %s", s)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, "model-00002-of-00002.safetensors"), later, later)
	if s := run(); s != "exported" {
		t.Fatalf("run after a shard changed: %s", s)
	}
}

// convert shares its sources across an Indexed Job's pods as run shares a manifest.
func TestConvertSharesItsSourcesAcrossIndexes(t *testing.T) {
	dir := t.TempDir()
	var srcs []string
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, n+".npy")
		writeNpy(t, p, "(1,)", []float32{1})
		srcs = append(srcs, p)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	t.Setenv("CKPT2CSV_SHARD_COUNT", "2")
	out := filepath.Join(dir, "out")
	if code, _, stderr := ckpt2csv(t, append([]string{"convert", "--out", out}, srcs...)...); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sidecars []string
	filepath.Walk(out, func(p string, _ os.FileInfo, err error) error {
		if err == nil && filepath.Base(p) == "metadata.json" {
			sidecars = append(sidecars, p)
		}
		return nil
	})
	if len(sidecars) != 1 || !strings.Contains(sidecars[0], "b.npy") {
		t.Fatalf("index 1 of 2 exported %v, want b.npy only", sidecars)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "a.npy"), "(1,)", []float32{1})
	dup := filepath.Join(dir, "dup.txt")
	os.WriteFile(dup, []byte("a.npy x\na.npy x\n"), 0o644)
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"uri\": \"a.npy\"}\n{\"uri\": 3}\n"), 0o644)
	escape := filepath.Join(dir, "escape.txt")
	os.WriteFile(escape, []byte("a.npy ../../etc\n"), 0o644)
	badFormat := filepath.Join(dir, "format.jsonl")
	os.WriteFile(badFormat, []byte("{\"uri\": \"a.npy\", \"format\": \"bogus\"}\n"), 0o644)
	badScheme := filepath.Join(dir, "scheme.txt")
	os.WriteFile(badScheme, []byte("bogus://x/y.pt\n"), 0o644)
	for name, args := range map[string][]string{
		"duplicate ids":     {"run", "--manifest", dup, "--out", dir},
		"bad json line":     {"run", "--manifest", bad, "--out", dir},
		"id leaving out":    {"run", "--manifest", escape, "--out", dir},
		"missing manifest":  {"run", "--manifest", filepath.Join(dir, "nope.txt"), "--out", dir},
		"unknown flag":      {"convert", "a.npy", "--bogus"},
		"bad compression":   {"convert", "a.npy", "--out", dir, "--compression", "lz5"},
		"bad columns":       {"convert", "a.npy", "--out", dir, "--columns", "value,nope"},
		"no out":            {"convert", "a.npy"},
		"shard index range": {"run", "--manifest", dup, "--out", dir, "--shard-index", "4", "--shard-count", "4"},
		"bad include glob":  {"convert", "a.npy", "--out", dir, "--include", "[abc"},
		"bad exclude glob":  {"convert", "a.npy", "--out", dir, "--exclude", "["},
		"entry format":      {"run", "--manifest", badFormat, "--out", dir},
		"entry scheme":      {"run", "--manifest", badScheme, "--out", dir},
		"source scheme":     {"convert", "bogus://x/y.pt", "--out", dir},
	} {
		if code, _, stderr := ckpt2csv(t, args...); code != exitUsage {
			t.Errorf("%s: exit %d (%s)", name, code, stderr)
		}
	}
	if _, _, stderr := ckpt2csv(t, "run", "--manifest", bad, "--out", dir); !strings.Contains(stderr, "line 2") {
		t.Errorf("bad manifest message does not name the line: %s", stderr)
	}
}

func TestEntryTimeoutFailsTheEntryRetryably(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	writeNpy(t, src, "(2,)", []float32{1, 2})
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", filepath.Join(dir, "out"), "--entry-timeout", "1ns", "--log-format", "json")
	if code != exitRetryable || !strings.Contains(stderr, "--entry-timeout") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestLimitFlagsAreEnforced(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	writeNpy(t, src, "(2,)", []float32{1, 2})
	code, _, stderr := ckpt2csv(t, "convert", src, "--out", filepath.Join(dir, "out"), "--max-header-bytes", "16", "--log-format", "json")
	if code != exitPermanent {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if code, _, _ := ckpt2csv(t, "convert", src, "--out", dir, "--max-tensors", "0"); code != exitUsage {
		t.Errorf("--max-tensors 0: exit %d", code)
	}
}

// A TensorFlow checkpoint named by its prefix, as tf.train.latest_checkpoint
// gives it, opens its .index.
func TestTFCheckpointPrefixOpensItsIndex(t *testing.T) {
	code, stdout, stderr := ckpt2csv(t, "inspect", "../../testdata/hostile/tf-bad-crc") // its index is sound; only data fails
	if code != exitOK || !strings.Contains(stdout, ": tf, 1 tensors") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
