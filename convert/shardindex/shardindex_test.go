package shardindex

// Tests and a fuzz target for the shard index parser.

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"ckpt2csv/convert"
)

func TestParse(t *testing.T) {
	idx, err := Parse([]byte(`{"metadata": {"total_size": 10}, "weight_map": {
		"b": "model-00010-of-00010.safetensors", "a": "model-00002-of-00010.safetensors",
		"c": "model-00002-of-00010.safetensors", "d": "sub/model-00001-of-00010.safetensors"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(idx.Shards)
	want := "[{model-00002-of-00010.safetensors [a c]} {model-00010-of-00010.safetensors [b]} {sub/model-00001-of-00010.safetensors [d]}]"
	if got != want {
		t.Fatalf("shards %s, want %s", got, want)
	}
	if fmt.Sprint(idx.Metadata) != "map[total_size:10]" {
		t.Errorf("metadata %v", idx.Metadata)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ json, msg string }{
		{`[]`, "not a JSON object"},
		{`{"metadata": {}}`, `no "weight_map"`},
		{`{"weight_map": []}`, "not an object"},
		{`{"weight_map": {}}`, "lists no tensors"},
		{`{"weight_map": {"a": 1}}`, "non-string"},
		{`{"weight_map": {"a": "x", "a": "y"}}`, "twice"},
		{`{"weight_map": {"a": "x"}, "weight_map": {"b": "y"}}`, "two"},
		{`{"weight_map": {"a": "../x"}}`, "plain relative path"},
		{`{"weight_map": {"a": "x/./y"}}`, "plain relative path"},
		{`{"weight_map": {"a": "x//y"}}`, "plain relative path"},
		{`{"weight_map": {"a": "/x"}}`, "not a relative path"},
		{`{"weight_map": {"a": "C:x"}}`, "not a relative path"},
		{`{"weight_map": {"a": "s3://b/x"}}`, "not a relative path"},
		{`{"weight_map": {"a": "x\\..\\y"}}`, "plain relative path"},
		{`{"weight_map": {"a": ""}}`, "empty shard"},
		{`{"weight_map": {"a": "x"}} x`, "after its JSON object"},
		{`{"weight_map": {"a": "x"}`, "not valid JSON"},
		{`{"metadata": 3, "weight_map": {"a": "x"}}`, "metadata"},
	} {
		_, err := Parse([]byte(c.json))
		if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: want ErrInvalid with %q, got %v", c.json, c.msg, err)
		}
	}
}

func TestNaturalOrder(t *testing.T) {
	names := []string{"m-10.bin", "m-9.bin", "m-0010.bin", "m-2.bin", "a.bin", "m-1.bin", "m-.bin"}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	if got := fmt.Sprint(names); got != "[a.bin m-.bin m-1.bin m-2.bin m-9.bin m-10.bin m-0010.bin]" && got != "[a.bin m-.bin m-1.bin m-2.bin m-9.bin m-0010.bin m-10.bin]" {
		t.Fatalf("order %s", got)
	}
}

// FuzzParse: the index parser never panics, and what it accepts is consistent.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"metadata": {"total_size": 10}, "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {"a": "../x"}}`))
	f.Add([]byte(`{"weight_map": {"a": "x", "a": "y"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := Parse(b)
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range idx.Shards {
			if checkFile(s.File) != nil || len(s.Tensors) == 0 {
				t.Fatalf("accepted shard %q with %d tensors", s.File, len(s.Tensors))
			}
			for _, n := range s.Tensors {
				if seen[n] {
					t.Fatalf("tensor %q in two shards", n)
				}
				seen[n] = true
			}
		}
	})
}
