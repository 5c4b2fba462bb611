package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ckpt2csv/convert/converttest"
)

// TestRealCheckpoints exports every real-world fixture end to end, verifies
// the export, and finds every tensor the real framework read (by sha256 of
// its values: names follow each framework's own convention) in the sidecar.
func TestRealCheckpoints(t *testing.T) {
	dir := converttest.RealFixtures()
	if dir == "" {
		t.Skip("no ../shared/fixtures/real in this clone")
	}
	exps, _ := filepath.Glob(filepath.Join(dir, "expected", "*.json"))
	for _, e := range exps {
		name := strings.TrimSuffix(filepath.Base(e), ".json")
		t.Run(name, func(t *testing.T) {
			path, exp := converttest.Real(t, name)
			out := t.TempDir()
			code, _, stderr := ckpt2csv(t, "convert", path, "--out", out, "--log-format", "json")
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			metas, _ := filepath.Glob(filepath.Join(out, "*", "*", "*", "*", "*", "*", "*", "metadata.json"))
			if len(metas) == 0 {
				filepath.Walk(out, func(p string, _ os.FileInfo, _ error) error {
					if filepath.Base(p) == "metadata.json" {
						metas = append(metas, p)
					}
					return nil
				})
			}
			if len(metas) != 1 {
				t.Fatalf("want one export, found %v", metas)
			}
			if code, _, stderr := ckpt2csv(t, "verify", filepath.Dir(metas[0])); code != exitOK {
				t.Fatalf("verify exit %d: %s", code, stderr)
			}
			sc := readSidecar(t, metas[0])
			have := map[string]bool{}
			for _, tn := range sc.Tensors {
				have[tn.SHA256] = true
			}
			want := exp.Tensors
			for _, x := range exp.ExtraTensors {
				if x.DType != "object" && !strings.HasPrefix(x.DType, "<U") && !strings.HasPrefix(x.DType, "str") {
					want = append(want, x)
				}
			}
			for _, x := range want {
				if x.SHA256 != "" && !have[x.SHA256] {
					t.Errorf("tensor %s (%s %v) not exported bit-exact", x.Name, x.DType, x.Shape)
				}
			}
			raw, _ := json.Marshal(sc.Skipped)
			t.Logf("%d tensors exported, %d expected, skipped %s", len(sc.Tensors), len(want), raw)
		})
	}
}
