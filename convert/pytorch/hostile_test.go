package pytorch_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
	files := converttest.HostileFiles(t, "pytorch-*")
	if len(files) == 0 {
		t.Fatal("no hostile files")
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
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
			converttest.CheckRefused(t, p, err)
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
