package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("../../configs/job.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("compression: zstd\nexclude: ['optimizer*', 'x']\nshard-size: 1GiB\n"))
	f.Add([]byte("workers: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := defaultSettings()
		fs := flag.NewFlagSet("f", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		s.bind(fs, true)
		if err := resolve(fs, &s, []string{"--config", path}); err != nil {
			return
		}
		// whatever the file held, the options are either valid or refused
		_, _ = jobOptions(s, zerolog.Nop())
	})
}
