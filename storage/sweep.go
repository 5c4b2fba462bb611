// Removing what writes cut short by a crash (kill -9, a lost node) left
// behind, before an export is redone.
package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Sweep removes, under the directory prefix, the remains of writes that never
// completed: S3 incomplete multipart uploads and fileblob temporary files
// beside their target. Objects are never touched. Azure discards uncommitted
// blocks by itself after a week and GCS expires resumable sessions, so there
// is nothing to do for them. The caller must be the only writer under prefix.
func (b *Bucket) Sweep(ctx context.Context, prefix string) error {
	var s3c *s3.Client
	if b.As(&s3c) {
		return b.sweepS3(ctx, s3c, prefix)
	}
	dir := b.be.LocalPath(strings.TrimSuffix(prefix, "/"))
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep %s: %w", b.URI(prefix), err)
	}
	for _, e := range entries {
		if !e.IsDir() && fileblobTemp.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("sweep %s: %w", b.URI(prefix), err)
			}
		}
	}
	return nil
}

func (b *Bucket) sweepS3(ctx context.Context, c *s3.Client, prefix string) error {
	u, err := url.Parse(b.URI(""))
	if err != nil {
		return err
	}
	bucket := aws.String(u.Host)
	in := &s3.ListMultipartUploadsInput{Bucket: bucket, Prefix: aws.String(prefix)}
	for {
		page, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			return b.wrap("list uploads", prefix, err)
		}
		for _, up := range page.Uploads {
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: up.Key, UploadId: up.UploadId}); err != nil {
				return b.wrap("abort upload", aws.ToString(up.Key), err)
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}
