// One conformance suite for every backend: mem, file, and S3 / GCS / Azure
// when CKPT2CSV_TEST_S3 / _GCS / _AZURE hold a bucket URL (scripts/storage-servers.sh).
package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// backendCase opens one bucket for the suite and returns it with a fresh key prefix.
type backendCase struct {
	name string
	open func(t testing.TB) (*Bucket, string)
}

func backends(t testing.TB) []backendCase {
	cases := []backendCase{
		{"mem", func(t testing.TB) (*Bucket, string) {
			return openT(t, "mem://conformance/"+uniq(t)+"/")
		}},
		{"file", func(t testing.TB) (*Bucket, string) {
			return openT(t, t.TempDir()+"/")
		}},
	}
	for _, c := range []struct{ name, env string }{
		{"s3", "CKPT2CSV_TEST_S3"}, {"gcs", "CKPT2CSV_TEST_GCS"}, {"azure", "CKPT2CSV_TEST_AZURE"},
	} {
		url := os.Getenv(c.env)
		cases = append(cases, backendCase{c.name, func(t testing.TB) (*Bucket, string) {
			if url == "" {
				t.Skipf("%s not set (scripts/storage-servers.sh starts loopback servers)", c.env)
			}
			b, prefix := openT(t, joinURI(url, "conformance/"+uniq(t)+"/"))
			return b, prefix
		}})
	}
	return cases
}

// joinURI puts key into a bucket URL, before its query string.
func joinURI(bucketURL, key string) string {
	base, query, _ := strings.Cut(bucketURL, "?")
	u := strings.TrimSuffix(base, "/") + "/" + key
	if query != "" {
		u += "?" + query
	}
	return u
}

func uniq(t testing.TB) string {
	return strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + fmt.Sprint(time.Now().UnixNano())
}

func openT(t testing.TB, uri string) (*Bucket, string) {
	t.Helper()
	b, key, err := OpenURI(context.Background(), uri)
	if err != nil {
		t.Fatalf("OpenURI(%s): %v", uri, err)
	}
	t.Cleanup(func() { b.Close() })
	if !strings.HasSuffix(key, "/") {
		key += "/"
	}
	return b, key
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestConformance(t *testing.T) {
	for _, bc := range backends(t) {
		t.Run(bc.name, func(t *testing.T) {
			t.Run("WriteReadStatDelete", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				data := randomBytes(t, 3<<20+123)
				if err := b.WriteAll(ctx, p+"a/obj.bin", data, "application/octet-stream"); err != nil {
					t.Fatal(err)
				}
				got, err := b.ReadAll(ctx, p+"a/obj.bin")
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("ReadAll: %d bytes, err %v; want %d bytes back", len(got), err, len(data))
				}
				a, err := b.Stat(ctx, p+"a/obj.bin")
				if err != nil || a.Size != int64(len(data)) || a.ETag == "" {
					t.Fatalf("Stat = %+v, %v", a, err)
				}
				if err := b.Delete(ctx, p+"a/obj.bin"); err != nil {
					t.Fatal(err)
				}
				if err := b.Delete(ctx, p+"a/obj.bin"); err != nil {
					t.Fatalf("deleting a missing key: %v", err)
				}
				if _, err := b.Stat(ctx, p+"a/obj.bin"); !IsNotFound(err) {
					t.Fatalf("Stat after delete: %v, want not found", err)
				}
			})
			t.Run("NotFound", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				if _, err := b.Object(ctx, p+"missing.pt"); !IsNotFound(err) || IsTransient(err) {
					t.Fatalf("Object(missing) = %v; want not found, permanent", err)
				}
				if _, err := b.ReadAll(ctx, p+"missing.pt"); !IsNotFound(err) {
					t.Fatalf("ReadAll(missing) = %v; want not found", err)
				}
				if _, err := b.NewReader(ctx, p+"missing.pt"); !IsNotFound(err) {
					t.Fatalf("NewReader(missing) = %v; want not found", err)
				}
				if !strings.Contains(fmt.Sprint(b.Stat(ctx, p+"missing.pt")), "missing.pt") {
					t.Error("a not-found error should name the object")
				}
			})
			t.Run("ListRecursiveSorted", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				keys := []string{"z.csv", "a/b/c.csv", "a/a.csv", "m/n.json", "a.csv"}
				for _, k := range keys {
					if err := b.WriteAll(ctx, p+k, []byte(k), "text/plain"); err != nil {
						t.Fatal(err)
					}
				}
				got, err := b.List(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]string, len(keys))
				for i, k := range keys {
					want[i] = p + k
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("List = %q\nwant %q", got, want)
				}
				got, err = b.List(ctx, p+"a/")
				if err != nil || !slices.Equal(got, []string{p + "a/a.csv", p + "a/b/c.csv"}) {
					t.Fatalf("List(a/) = %q, %v", got, err)
				}
				got, err = b.List(ctx, p+"nothing/")
				if err != nil || len(got) != 0 {
					t.Fatalf("List(empty prefix) = %q, %v", got, err)
				}
			})
			t.Run("StreamedWriteIsAtomic", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				data := randomBytes(t, 20<<20+7)
				w, err := b.Create(ctx, p+"part-00000.csv", "text/csv")
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(data); off += 1 << 20 {
					if _, err := w.Write(data[off:min(len(data), off+1<<20)]); err != nil {
						t.Fatal(err)
					}
					if off == 10<<20 {
						if _, err := b.Stat(ctx, p+"part-00000.csv"); !IsNotFound(err) {
							t.Fatalf("object visible before Close: %v", err)
						}
						if keys, _ := b.List(ctx, p); len(keys) != 0 {
							t.Fatalf("List shows %q before Close", keys)
						}
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				w.Abort() // no-op after Close
				got, err := b.ReadAll(ctx, p+"part-00000.csv")
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, err %v", len(got), err)
				}
			})
			t.Run("EmptyObject", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				w, err := b.Create(ctx, p+"empty", "text/csv")
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				o, err := b.Object(ctx, p+"empty")
				if err != nil || o.Size() != 0 {
					t.Fatalf("Object(empty) = %v, %v", o, err)
				}
				if n, err := o.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
					t.Fatalf("ReadAt on empty = %d, %v", n, err)
				}
			})
			t.Run("AbortLeavesNothing", func(t *testing.T) {
				b, p := bc.open(t)
				for _, n := range []int{0, 1 << 20, 20 << 20} {
					ctx := context.Background()
					w, err := b.Create(ctx, p+fmt.Sprintf("abort-%d", n), "text/csv")
					if err != nil {
						t.Fatal(err)
					}
					data := randomBytes(t, n)
					for off := 0; off < n; off += 1 << 20 {
						if _, err := w.Write(data[off:min(n, off+1<<20)]); err != nil {
							t.Fatal(err)
						}
					}
					w.Abort()
					w.Abort()
					if err := w.Close(); err == nil {
						// Close after Abort reports nothing new; it must not publish.
					}
				}
				keys, err := b.List(context.Background(), p)
				if err != nil || len(keys) != 0 {
					t.Fatalf("after aborts List = %q, %v", keys, err)
				}
				assertNoLeftovers(t, b, p)
			})
			t.Run("CancelledContextAborts", func(t *testing.T) {
				b, p := bc.open(t)
				ctx, cancel := context.WithCancel(context.Background())
				w, err := b.Create(ctx, p+"cancelled", "text/csv")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(randomBytes(t, 9<<20)); err != nil {
					t.Fatal(err)
				}
				cancel()
				if err := w.Close(); err == nil {
					t.Fatal("Close after cancel succeeded")
				}
				if _, err := b.Stat(context.Background(), p+"cancelled"); !IsNotFound(err) {
					t.Fatalf("cancelled write is visible: %v", err)
				}
				assertNoLeftovers(t, b, p)
			})
			t.Run("RangeReads", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				data := randomBytes(t, 5<<20+17)
				if err := b.WriteAll(ctx, p+"r.bin", data, "application/octet-stream"); err != nil {
					t.Fatal(err)
				}
				o, err := b.Object(ctx, p+"r.bin")
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				if o.Size() != int64(len(data)) || o.Name() != b.URI(p+"r.bin") {
					t.Fatalf("Size %d Name %q", o.Size(), o.Name())
				}
				for _, r := range []struct{ off, n int64 }{
					{0, 8}, {int64(len(data)) - 22, 22}, {1<<20 - 3, 10}, {3 << 20, 2<<20 + 17},
					{100, 3 << 20}, {int64(len(data)) - 5, 5}, {7, 1},
				} {
					buf := make([]byte, r.n)
					n, err := o.ReadAt(buf, r.off)
					if err != nil || int64(n) != r.n || !bytes.Equal(buf, data[r.off:r.off+r.n]) {
						t.Fatalf("ReadAt(%d, %d) = %d, %v (bytes equal: %v)", r.off, r.n, n, err, bytes.Equal(buf[:n], data[r.off:r.off+int64(n)]))
					}
				}
				// Past the end: io.EOF with what there is.
				buf := make([]byte, 100)
				n, err := o.ReadAt(buf, int64(len(data))-40)
				if n != 40 || err != io.EOF || !bytes.Equal(buf[:40], data[len(data)-40:]) {
					t.Fatalf("ReadAt across the end = %d, %v", n, err)
				}
				if n, err := o.ReadAt(buf, int64(len(data))+10); n != 0 || err != io.EOF {
					t.Fatalf("ReadAt past the end = %d, %v", n, err)
				}
				// A whole sequential scan in small reads.
				got, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("sequential scan: %d bytes, %v", len(got), err)
				}
			})
			t.Run("Sibling", func(t *testing.T) {
				b, p := bc.open(t)
				ctx := context.Background()
				for _, k := range []string{"ck/model.safetensors.index.json", "ck/shards/s1.safetensors"} {
					if err := b.WriteAll(ctx, p+k, []byte(k), "application/json"); err != nil {
						t.Fatal(err)
					}
				}
				o, err := b.Object(ctx, p+"ck/model.safetensors.index.json")
				if err != nil {
					t.Fatal(err)
				}
				s, err := o.Sibling(ctx, "shards/s1.safetensors")
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, s.Size())
				if _, err := s.ReadAt(buf, 0); err != nil || string(buf) != "ck/shards/s1.safetensors" {
					t.Fatalf("sibling read %q, %v", buf, err)
				}
				for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", "", ".", "a\\b", "C:/x"} {
					if _, err := o.Sibling(ctx, bad); err == nil || IsNotFound(err) {
						t.Errorf("Sibling(%q) = %v; want a rejection", bad, err)
					}
				}
				if _, err := o.Sibling(ctx, "nope.bin"); !IsNotFound(err) {
					t.Errorf("Sibling(missing) = %v", err)
				}
			})
		})
	}
}

// assertNoLeftovers checks that nothing but listed objects remains under
// prefix: no temp files, no incomplete multipart uploads, no uncommitted blobs.
func assertNoLeftovers(t *testing.T, b *Bucket, prefix string) {
	t.Helper()
	keys, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if lp := b.Backend().LocalPath(strings.TrimSuffix(prefix, "/") + "/x"); lp != "" {
		root := filepath.Dir(lp)
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			key := strings.TrimPrefix(filepath.ToSlash(path), "/")
			if strings.HasPrefix(key, prefix) && !slices.Contains(keys, key) {
				t.Errorf("leftover file %s", path)
			}
			return nil
		})
	}
	if lo, ok := leftoverCheckers[schemeOf(b.URI(prefix))]; ok {
		lo(t, b, prefix, keys)
	}
}

func schemeOf(uri string) string {
	s, _, _ := strings.Cut(uri, "://")
	return s
}

// leftoverCheckers look for server-side leftovers a cloud can hold (cloud_test.go).
var leftoverCheckers = map[string]func(t *testing.T, b *Bucket, prefix string, keys []string){}
