package pytorch_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	_ "ckpt2csv/convert/pytorch"
)

// marker is the file the hostile payloads would create (see generate.py).
const marker = "/tmp/ckpt2csv-pytorch-pwned"

// Every hostile PyTorch file fails detection or opening with ErrInvalid and
// the expected one-line message, in bounded time and memory, and no payload runs.
func TestHostileFilesAreRefused(t *testing.T) {
	os.Remove(marker)
	files, _ := filepath.Glob("../../testdata/hostile/pytorch-*")
	if len(files) == 0 {
		t.Fatal("no hostile files")
	}
	for _, p := range files {
		if strings.HasSuffix(p, ".err") {
			continue
		}
		t.Run(filepath.Base(p), func(t *testing.T) {
			want, err := os.ReadFile(p + ".err")
			if err != nil {
				t.Fatal(err)
			}
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			src := converttest.OpenFile(t, p)
			ck, err := convert.Open(context.Background(), src, "auto", convert.Limits{}.Defaults())
			if err == nil {
				// a file that opens must fail while streaming
				for i := range ck.Info().Tensors {
					rc, e := ck.Values(context.Background(), i)
					if e == nil {
						_, e = io.Copy(io.Discard, rc)
						rc.Close()
					}
					if e != nil {
						err = e
						break
					}
				}
				ck.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, convert.ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if w := strings.TrimSpace(string(want)); !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
				t.Errorf("allocated %d MB", grew>>20)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a payload ran: " + marker + " exists")
	}
}
