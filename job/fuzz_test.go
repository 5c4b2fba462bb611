package job

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	for _, p := range []string{"../configs/examples/manifest.txt", "../configs/examples/manifest.jsonl", "../configs/examples/manifest-globs.txt"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("{\"uri\": \"a.pt\", \"name\": \"x\"}\n{\"uri\": \"s3://b/k?region=x\"}\n"))
	f.Add([]byte("a.pt name\n# c\n\n\ufeffb.pt\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.URI == "" {
				t.Fatalf("entry without uri from %q", data)
			}
			if e.Name != "" && checkID(e.Name) != nil {
				t.Fatalf("unsafe name %q accepted", e.Name)
			}
			if id, err := entryID(e); err == nil && checkID(id) != nil {
				t.Fatalf("unsafe id %q", id)
			}
		}
	})
}
