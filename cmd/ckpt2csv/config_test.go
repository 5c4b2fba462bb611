package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSettingsPrecedenceFlagEnvFileDefault(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(cfg, []byte("compression: zstd\nshard-size: 64MiB\nworkers: 3\nexclude:\n  - 'optimizer*'\n  - '*.num_batches_tracked'\n"), 0o644)
	t.Setenv("CKPT2CSV_SHARD_SIZE", "128MiB")
	t.Setenv("CKPT2CSV_WORKERS", "5")
	t.Setenv("CKPT2CSV_CONFIG", cfg)
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	t.Setenv("CKPT2CSV_SHARD_COUNT", "4")
	s := defaultSettings()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.bind(fs, true)
	if err := resolve(fs, &s, []string{"a.pt", "--workers", "7", "b.pt", "--no-header"}); err != nil {
		t.Fatal(err)
	}
	got := []any{s.Compression, s.ShardSize, s.Workers, s.Header, s.Exclude, s.ShardIndex, s.ShardCount, fs.Args(), s.Format}
	want := []any{"zstd", "128MiB", 7, false, []string{"optimizer*", "*.num_batches_tracked"}, 2, 4, []string{"a.pt", "b.pt"}, "auto"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestConfigFileIsStrict(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(cfg, []byte("compresion: zstd\n"), 0o644)
	if code, _, stderr := ckpt2csv(t, "convert", "x.npy", "--out", t.TempDir(), "--config", cfg); code != exitUsage {
		t.Errorf("misspelt key: exit %d (%s)", code, stderr)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "256MB": 256e6, "64k": 64 << 10, "1073741824": 1 << 30, "2 MiB": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1XB", "99999999999GiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestConvertAcceptsTheRunConfig(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.npy")
	writeNpy(t, src, "(2,)", []float32{1, 2})
	cfg := filepath.Join(dir, "job.yaml")
	os.WriteFile(cfg, []byte("manifest: m.txt\nshard-count: 2\ncompression: none\n"), 0o644)
	if code, _, stderr := ckpt2csv(t, "convert", src, "--out", filepath.Join(dir, "out"), "--config", cfg); code != exitOK {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
