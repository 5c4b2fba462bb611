// Fuzz target for the bundle index reader.
package tfckpt

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// FuzzIndex reads arbitrary bytes as a bundle index beside a fixed data
// shard, streaming every tensor it lists: errors must be ErrInvalid, never a
// panic, and every stream must be exactly as long as its shape says.
func FuzzIndex(f *testing.F) {
	dir := f.TempDir()
	bd := allTypes()
	bd.shards = 1
	for i := range bd.specs {
		bd.specs[i].shard = 0
	}
	for _, o := range []tableOptions{{}, {blockSize: 96, restartInterval: 3}} {
		bd.table = o
		b, _ := os.ReadFile(bd.write(f, dir, "seed"))
		f.Add(b)
	}
	shard, _ := os.ReadFile(filepath.Join(dir, "seed.data-00000-of-00001"))
	hostile, _ := filepath.Glob("../../testdata/hostile/tf-*.index")
	for _, p := range hostile {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src := &converttest.Mem{Path: "d/seed.index", Data: b, Files: map[string][]byte{"seed.data-00000-of-00001": shard}}
		Match(src, b[:min(len(b), convert.HeadSize)])
		ck, err := Open(context.Background(), src, convert.Limits{MaxTensors: 1000})
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		converttest.CheckStreams(t, ck, math.MaxInt64)
	})
}
