package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileCorpus runs every file in testdata/hostile through the CLI: each
// must fail with exit 3 and one error line naming the file and the problem
// (the .err file beside it holds a substring of that line), leaving no
// sidecar and no shard objects.
func TestHostileCorpus(t *testing.T) {
	files, err := filepath.Glob("../../testdata/hostile/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".err") || strings.HasSuffix(f, ".md") {
			continue
		}
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		n++
		want, err := os.ReadFile(f + ".err")
		if err != nil {
			t.Errorf("%s has no .err file", f)
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			out := t.TempDir()
			code, _, stderr := ckpt2csv(t, "convert", f, "--out", out, "--log-format", "json")
			if code != exitPermanent {
				t.Errorf("exit %d, want %d\n%s", code, exitPermanent, stderr)
			}
			var errLines []string
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				var ev struct{ Level, Message string }
				if json.Unmarshal([]byte(line), &ev) == nil && ev.Level == "error" {
					errLines = append(errLines, ev.Message)
				}
			}
			sub := strings.TrimSpace(string(want))
			if len(errLines) != 1 || !strings.Contains(errLines[0], sub) || !strings.Contains(errLines[0], filepath.Base(f)) {
				t.Errorf("want one error line naming %s and containing %q, got %q", filepath.Base(f), sub, errLines)
			}
			filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.Contains(p, "_reports") {
					t.Errorf("left %s behind", p)
				}
				return nil
			})
		})
	}
	if n == 0 {
		t.Skip("no hostile corpus")
	}
}
