package job

import (
	"context"
	"io"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/storage"
)

// outDir is OUT/ID as a convert.Dir.
type outDir struct {
	b      *storage.Bucket
	prefix string // "OUT-key/ID/"
}

func (d outDir) key(name string) string { return d.prefix + name }

func (d outDir) Create(ctx context.Context, name string) (convert.ObjectWriter, error) {
	return d.b.Create(ctx, d.key(name), contentType(name))
}

func (d outDir) NewReader(ctx context.Context, name string) (io.ReadCloser, error) {
	return d.b.NewReader(ctx, d.key(name))
}

func (d outDir) Delete(ctx context.Context, name string) error { return d.b.Delete(ctx, d.key(name)) }

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".manifest"):
		return "application/json"
	case strings.HasSuffix(name, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(name, ".zst"):
		return "application/zstd"
	}
	return "text/csv"
}

// Verify checks the export at uri (OUT/ID) against its metadata.json.
func Verify(ctx context.Context, uri string) (*convert.VerifyReport, error) {
	b, key, err := openBucket(ctx, uri, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if key != "" && !strings.HasSuffix(key, "/") {
		key += "/"
	}
	return convert.Verify(ctx, outDir{b: b, prefix: key})
}
