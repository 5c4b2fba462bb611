package main

// docs/loading.md runs: its pandas snippets (with /usr/bin/python3 and
// pandas, when present) and its DuckDB SQL (through DuckDB's Node.js package,
// when CKPT2CSV_DUCKDB_NODE_DIR names a folder where it is installed:
// scripts/check-loading-docs.sh does that) run on a real export of a
// checkpoint that holds every value kind the text warns about. Its column
// lists are checked against the binary's.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"ckpt2csv/convert"
)

// docBlocks returns the code blocks of docs/loading.md that follow a
// "<!-- checked: NAME -->" line, by NAME.
func docBlocks(t *testing.T) (map[string]string, string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "docs", "loading.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- checked: ([a-z-]+) -->\n```[a-z]*\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(text), -1) {
		blocks[m[1]] = m[2]
	}
	for _, name := range []string{"duckdb", "pandas-load", "pandas-rebuild"} {
		if blocks[name] == "" {
			t.Fatalf("docs/loading.md has no checked block %q", name)
		}
	}
	return blocks, string(text)
}

// writeSafetensors writes tensors (name, dtype, shape, little-endian bytes) in order.
func writeSafetensors(t *testing.T, path string, tensors [][4]any) {
	t.Helper()
	var names []string
	hdr := map[string]any{}
	var data []byte
	for _, x := range tensors {
		b := x[3].([]byte)
		hdr[x[0].(string)] = map[string]any{"dtype": x[1], "shape": x[2], "data_offsets": []int{len(data), len(data) + len(b)}}
		names = append(names, x[0].(string))
		data = append(data, b...)
	}
	// encoding/json sorts keys; the order of data_offsets is the tensor order
	h, _ := json.Marshal(hdr)
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, uint64(len(h)))
	out.Write(h)
	out.Write(data)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func le[T any](vals ...T) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, vals)
	return b.Bytes()
}

// docsExport exports a checkpoint with every kind of value docs/loading.md
// speaks of to dir/out/runs/a/ckpt.pt, in several shards.
func docsExport(t *testing.T, dir string) *convert.Sidecar {
	t.Helper()
	f32 := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.Copysign(0, -1)), math.Float32frombits(1), math.MaxFloat32,
		math.Float32frombits(0x15ae43fd), // 7.038531e-26: float64 then float32 rounds to its neighbour
		0.1, -2.5, 3e-8}
	for i := range 1990 {
		f32 = append(f32, float32(math.Sin(float64(i)))*0.05)
	}
	f64 := []float64{1e-300 * 2.8163942417440673, -4.9e-324, math.MaxFloat64, 0.1, 1.0 / 3}
	for i := range 300 {
		f64 = append(f64, math.Cos(float64(i))*1e-300)
	}
	f16 := []uint16{0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff, 0x3555}
	bf16 := []uint16{0x3f80, 0xbf00, 0x7f80, 0x0001, 0x4049, 0x3dcd}
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), [][4]any{
		{"encoder.layers.0.weight", "F32", []int{50, 40}, le(f32...)},
		{"encoder.layers.0.bias", "F64", []int{len(f64)}, le(f64...)},
		{"head.weight", "F16", []int{2, 3}, le(f16...)},
		{"head.bf16", "BF16", []int{3, 2}, le(bf16...)},
		{"step", "I64", []int{}, le(int64(1<<62 + 12345))},
		{"counts", "U64", []int{2}, le(uint64(1<<64-1), uint64(1<<63+7))},
		{"mask", "BOOL", []int{2, 2}, []byte{1, 0, 0, 1}},
		{"=formula.weight", "U8", []int{3}, []byte{0, 128, 255}},
	})
	os.WriteFile(filepath.Join(dir, "manifest.txt"), []byte("model.safetensors runs/a/ckpt.pt\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := ckpt2csv(t, "run", "--manifest", filepath.Join(dir, "manifest.txt"), "--out", out,
		"--shard-size", "16KiB", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	sc := readSidecar(t, filepath.Join(out, "runs", "a", "ckpt.pt", "metadata.json"))
	if len(sc.Shards) < 3 || len(sc.Tensors) != 8 {
		t.Fatalf("export has %d shards and %d tensors", len(sc.Shards), len(sc.Tensors))
	}
	return sc
}

func TestLoadingDocsColumnsAreTheBinarys(t *testing.T) {
	blocks, text := docBlocks(t)
	cols := strings.Join(convert.DefaultColumns, ",")
	bq := regexp.MustCompile(`(?m)^\s+(layer_index:\S+)$`).FindStringSubmatch(text)
	if bq == nil {
		t.Fatal("no BigQuery schema in docs/loading.md")
	}
	var names []string
	for _, f := range strings.Split(bq[1], ",") {
		names = append(names, strings.Split(f, ":")[0])
	}
	if strings.Join(names, ",") != cols {
		t.Errorf("BigQuery schema columns %q, want %q", names, cols)
	}
	duck := regexp.MustCompile(`'([a-z_]+)': '[A-Z]+'`).FindAllStringSubmatch(blocks["duckdb"], -1)
	names = nil
	for _, m := range duck {
		names = append(names, m[1])
	}
	if strings.Join(names, ",") != cols {
		t.Errorf("DuckDB columns %q, want %q", names, cols)
	}
	if !strings.Contains(text, `"columns": ["`+strings.Join(convert.DefaultColumns, `", "`)+`"]`) {
		t.Errorf("the sidecar excerpt does not list the default columns")
	}
	// The Redshift manifest shown is the one --redshift-manifest writes.
	m := regexp.MustCompile("(?s)```json\n(\\{\"entries\".*?)```").FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no Redshift manifest example")
	}
	var manifest struct {
		Entries []struct {
			URL       string `json:"url"`
			Mandatory bool   `json:"mandatory"`
			Meta      struct {
				ContentLength int64 `json:"content_length"`
			} `json:"meta"`
		} `json:"entries"`
	}
	dec := json.NewDecoder(strings.NewReader(m[1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&manifest); err != nil || len(manifest.Entries) == 0 || !manifest.Entries[0].Mandatory {
		t.Errorf("Redshift manifest example: %v %+v", err, manifest)
	}
}

func havePandas(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pandas, numpy").Run(); err != nil {
		t.Skipf("%s with pandas and numpy: %v", python, err)
	}
	return python
}

func TestLoadingDocsPandasRebuildsEveryTensorBitForBit(t *testing.T) {
	blocks, _ := docBlocks(t)
	python := havePandas(t)
	dir := t.TempDir()
	sc := docsExport(t, dir)
	for _, name := range []string{"pandas-load", "pandas-rebuild"} {
		cmd := exec.Command(python, "-c", blocks[name])
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("%s: %v\n%s%s", name, err, out, stderr.Bytes())
		}
		if name == "pandas-load" {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != len(sc.Tensors) {
			t.Fatalf("%s printed %d lines for %d tensors:\n%s", name, len(lines), len(sc.Tensors), out)
		}
		for i, l := range lines {
			want := fmt.Sprintf("%s: %s %v sha256 matches", sc.Tensors[i].Name, sc.Tensors[i].DType,
				strings.ReplaceAll(fmt.Sprint(sc.Tensors[i].Shape), " ", ", "))
			if l != want {
				t.Errorf("%s: %q, want %q", name, l, want)
			}
		}
	}
}

func TestLoadingDocsDuckDBQueriesRun(t *testing.T) {
	blocks, _ := docBlocks(t)
	nodeDir := os.Getenv("CKPT2CSV_DUCKDB_NODE_DIR")
	if nodeDir == "" {
		t.Skip("CKPT2CSV_DUCKDB_NODE_DIR unset (scripts/check-loading-docs.sh sets it)")
	}
	dir := t.TempDir()
	sc := docsExport(t, dir)
	script := filepath.Join(nodeDir, "ckpt2csv-docs-check.mjs")
	os.WriteFile(script, []byte(`import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'fs';
const con = await (await DuckDBInstance.create(':memory:')).connect();
for (const stmt of readFileSync(process.argv[2], 'utf8').split(/;\s*\n/)) {
  const sql = stmt.split('\n').filter(l => !l.trim().startsWith('--')).join('\n').trim();
  if (sql) console.log(JSON.stringify((await con.runAndReadAll(sql)).getRowObjectsJson()));
}
`), 0o644)
	defer os.Remove(script)
	sqlFile := filepath.Join(dir, "loading.sql")
	os.WriteFile(sqlFile, []byte(blocks["duckdb"]), 0o644)
	cmd := exec.Command("node", script, sqlFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 results:\n%s", out)
	}
	var perTensor []struct {
		Tensor   string
		N        string
		NaN, Inf string
	}
	if err := json.Unmarshal([]byte(lines[1]), &perTensor); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range perTensor {
		names = append(names, r.Tensor)
		for _, tr := range sc.Tensors {
			if strings.TrimPrefix(r.Tensor, "'") == tr.Name &&
				(r.N != fmt.Sprint(tr.Numel) || r.NaN != fmt.Sprint(tr.Stats.NaN) || r.Inf != fmt.Sprint(tr.Stats.Inf)) {
				t.Errorf("DuckDB %+v, sidecar numel %d nan %d inf %d", r, tr.Numel, tr.Stats.NaN, tr.Stats.Inf)
			}
		}
	}
	if len(names) != len(sc.Tensors) || !slices.Contains(names, "encoder.layers.0.weight") {
		t.Errorf("DuckDB tensors %q", names)
	}
}
