package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseManifestTextAndJSONLines(t *testing.T) {
	text := "# nightly\n\ns3://models/runs/a/ckpt.pt\nrel/b.safetensors  b-name\n  gs://x/y.pt  \n"
	got, err := ParseManifest([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{URI: "s3://models/runs/a/ckpt.pt"}, {URI: "rel/b.safetensors", Name: "b-name"}, {URI: "gs://x/y.pt"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("text: %+v", got)
	}
	jl := "\n{\"uri\": \"a.pt\", \"name\": \"n\", \"format\": \"pytorch\"}\n{\"uri\": \"b.npy\"}\n"
	got, err = ParseManifest([]byte(jl))
	if err != nil || len(got) != 2 || got[0].Format != "pytorch" || got[0].Name != "n" {
		t.Errorf("jsonl: %+v %v", got, err)
	}
	for name, bad := range map[string]string{
		"three fields":  "a.pt b c\n",
		"unknown field": "{\"uri\": \"a\", \"nmae\": \"x\"}\n",
		"no uri":        "{\"name\": \"x\"}\n",
		"bad name":      "a.pt ../x\n",
	} {
		if _, err := ParseManifest([]byte(bad)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestEntryIDs(t *testing.T) {
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{URI: "s3://models/runs/a/ckpt.pt?region=x"}, "runs/a/ckpt.pt"},
		{Entry{URI: "gs://b/k.pt", Name: "nightly/k"}, "nightly/k"},
		{Entry{URI: "/data/m.pt"}, "data/m.pt"},
		{Entry{URI: "../../m.pt"}, "m.pt"},
		{Entry{URI: "file:///srv/x/m.pt"}, "srv/x/m.pt"},
		{Entry{URI: "mem://b/dir/m.pt", rel: "dir/m.pt"}, "dir/m.pt"},
	} {
		if got, err := entryID(tc.e); err != nil || got != tc.want {
			t.Errorf("entryID(%+v) = %q, %v; want %q", tc.e, got, err, tc.want)
		}
	}
	for _, bad := range []string{"../x", "/abs", "a\\b", "a\x00b", "a//b", "_reports/x", string(make([]byte, 1000))} {
		if err := checkID(bad); err == nil {
			t.Errorf("checkID(%q) accepted", bad)
		}
	}
}

func TestPlanSharesEveryEntryExactlyOnce(t *testing.T) {
	var entries []Entry
	for i := range 23 {
		entries = append(entries, Entry{URI: fmt.Sprintf("s3://b/m%02d.pt", i)})
	}
	seen := map[string]int{}
	for idx := range 4 {
		items, err := Plan(entries, idx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(items); n < 5 || n > 6 {
			t.Errorf("index %d has %d entries, want 5 or 6", idx, n)
		}
		again, _ := Plan(entries, idx, 4)
		if !reflect.DeepEqual(items, again) {
			t.Errorf("index %d: plan is not deterministic", idx)
		}
		for _, it := range items {
			seen[it.ID]++
		}
	}
	if len(seen) != 23 {
		t.Errorf("%d distinct entries planned, want 23", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s planned %d times", id, n)
		}
	}
	if _, err := Plan(append(entries, Entry{URI: "s3://other/m00.pt"}), 0, 1); !errors.Is(err, ErrUsage) {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestManifestResolvesRelativeEntriesAndGlobs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"runs/a/x.pt", "runs/a/y.pt", "runs/b/z.pt", "runs/b/deep/w.pt", "other.npy"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "m.txt"), []byte("runs/*/x.pt\nruns/**/*.pt\nother.npy named\n"), 0o644)
	entries, err := ReadManifest(context.Background(), filepath.Join(dir, "m.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		id, err := entryID(e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	want := []string{"runs/a/x.pt", "runs/a/x.pt", "runs/a/y.pt", "runs/b/deep/w.pt", "runs/b/z.pt", "named"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v\nwant %v", ids, want)
	}
	if _, err := Plan(entries, 0, 0); !errors.Is(err, ErrUsage) {
		t.Errorf("x.pt listed twice must be a duplicate id: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "none.txt"), []byte("runs/*/nothing.pt\n"), 0o644)
	if _, err := ReadManifest(context.Background(), filepath.Join(dir, "none.txt")); !errors.Is(err, ErrUsage) {
		t.Errorf("a glob matching nothing: %v", err)
	}
}

func TestJoinURIResolvesDotDotInBucketsAndKeepsTheQuery(t *testing.T) {
	for _, tc := range []struct{ dir, rel, want string }{
		{"s3://b/manifests?endpoint=http://x", "../models/a.pt", "s3://b/models/a.pt?endpoint=http://x"},
		{"s3://b/models", "runs/*.np?", "s3://b/models/runs/*.np?"},
		{"s3://b", "a.pt", "s3://b/a.pt"},
		{"gs://b/m/sub", "../../a.pt", "gs://b/a.pt"},
		{"file:///tmp/m", "../a.pt", "file:///tmp/a.pt"},
		{"data/m", "../a.pt", "data/m/../a.pt"}, // a local path: the file system resolves it
		{".", "a.pt", "a.pt"},
	} {
		if got := joinURI(tc.dir, tc.rel); got != tc.want {
			t.Errorf("joinURI(%q, %q) = %q, want %q", tc.dir, tc.rel, got, tc.want)
		}
	}
	for _, tc := range []struct{ uri, path, query string }{
		{"s3://b/models/*.np??endpoint=http://x", "s3://b/models/*.np?", "?endpoint=http://x"},
		{"s3://b/a?.pt", "s3://b/a?.pt", ""},
		{"gs://b/a.pt?x=1&y=2", "gs://b/a.pt", "?x=1&y=2"},
	} {
		if p, q := splitQuery(tc.uri); p != tc.path || q != tc.query {
			t.Errorf("splitQuery(%q) = %q, %q", tc.uri, p, q)
		}
	}
}
