package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run the CLI as a child process (this test binary, with
// CKPT2CSV_TEST_MAIN=1), to kill it part way.
func TestMain(m *testing.M) {
	if os.Getenv("CKPT2CSV_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func child(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CKPT2CSV_TEST_MAIN=1")
	return cmd
}

// crashFixture writes n .npy files of m random float32 values and a manifest.
func crashFixture(t *testing.T, n, m int) (manifest, out string) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	var lines []string
	for i := range n {
		vals := make([]float32, m)
		for j := range vals {
			vals[j] = float32(r.NormFloat64())
		}
		name := fmt.Sprintf("c%d.npy", i)
		writeNpy(t, filepath.Join(dir, name), fmt.Sprintf("(%d,)", m), vals)
		lines = append(lines, name)
	}
	manifest = filepath.Join(dir, "manifest.txt")
	os.WriteFile(manifest, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	return manifest, filepath.Join(dir, "out")
}

// waitForShard polls until some shard object exists under out.
func waitForShard(t *testing.T, out string, cmd *exec.Cmd) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(out, "*", "part-*")); len(m) > 0 {
			return
		}
		if cmd.ProcessState != nil {
			t.Fatal("the run ended before writing a shard")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no shard appeared within 60s")
}

// checkExports asserts that every export folder with a sidecar holds exactly
// its sidecar's shards (nothing torn, duplicated or stale) and verifies, and
// that a folder without one holds only whole shards (each published in one
// piece; a reader trusts none of them without the sidecar) and, after a
// kill -9 only, a writer's temp file. It returns how many are complete.
func checkExports(t *testing.T, out string, killed bool) int {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, "c*.npy"))
	complete := 0
	for _, d := range dirs {
		var names []string
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Contains(names, "metadata.json") {
			for _, n := range names {
				if killed && strings.HasSuffix(n, ".tmp") {
					continue
				}
				b, err := os.ReadFile(filepath.Join(d, n))
				if err != nil || !strings.HasPrefix(n, "part-") || !wholeGzip(b) {
					t.Errorf("%s: incomplete export left %s visible", d, n)
				}
			}
			continue
		}
		complete++
		sc := readSidecar(t, filepath.Join(d, "metadata.json"))
		want := []string{"metadata.json"}
		for _, s := range sc.Shards {
			want = append(want, s.Path)
		}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("%s holds %v, sidecar lists %v", d, names, want)
		}
		if code, _, stderr := ckpt2csv(t, "verify", d); code != exitOK {
			t.Errorf("verify %s: %s", d, stderr)
		}
	}
	return complete
}

func TestKill9ThenRerunCompletes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	manifest, out := crashFixture(t, 4, 1<<20)
	args := []string{"run", "--manifest", manifest, "--out", out, "--shard-size", "2MiB", "--log-format", "json"}
	cmd := child(args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForShard(t, out, cmd)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := checkExports(t, out, true)
	if b, err := child(args...).CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, b)
	}
	if n := checkExports(t, out, false); n != 4 {
		t.Errorf("%d of 4 exports complete after the rerun (%d before)", n, before)
	}
}

func TestSigtermAbortsCleanlyWithin10s(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	manifest, out := crashFixture(t, 3, 1<<20)
	cmd := child("run", "--manifest", manifest, "--out", out, "--shard-size", "2MiB", "--log-format", "json")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForShard(t, out, cmd)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("exit took %v", took)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitTerminated {
		t.Errorf("exit %d, want %d", code, exitTerminated)
	}
	checkExports(t, out, false)
	if reports, _ := filepath.Glob(filepath.Join(out, "_reports", "*.json")); len(reports) != 1 {
		t.Errorf("reports: %v", reports)
	}
}

// wholeGzip reports whether b is a complete gzip stream.
func wholeGzip(b []byte) bool {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, r)
	return err == nil
}
