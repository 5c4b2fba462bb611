// Uploads that were started and never completed or aborted.
package storage

import (
	"context"
	"fmt"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// PendingUploads lists what an interrupted write can leave under prefix and
// List does not show: S3 incomplete multipart uploads ("key (upload ID)") and
// Azure blobs with uncommitted blocks only. Other stores keep none that can be
// listed (fileblob temp files are removed on abort; GCS resumable sessions
// expire on their own). Tests use it to prove aborts clean up; operators can
// use it to audit a bucket.
func (b *Bucket) PendingUploads(ctx context.Context, prefix string) ([]string, error) {
	var s3c *s3.Client
	if b.As(&s3c) {
		u, err := url.Parse(b.URI(""))
		if err != nil {
			return nil, err
		}
		var out []string
		in := &s3.ListMultipartUploadsInput{Bucket: aws.String(u.Host), Prefix: aws.String(prefix)}
		for {
			page, err := s3c.ListMultipartUploads(ctx, in)
			if err != nil {
				return nil, b.wrap("list uploads", prefix, err)
			}
			for _, up := range page.Uploads {
				out = append(out, fmt.Sprintf("%s (%s)", aws.ToString(up.Key), aws.ToString(up.UploadId)))
			}
			if !aws.ToBool(page.IsTruncated) {
				return out, nil
			}
			in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
		}
	}
	var cc *container.Client
	if b.As(&cc) {
		committed, err := b.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		have := make(map[string]bool, len(committed))
		for _, k := range committed {
			have[k] = true
		}
		var out []string
		pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
			Prefix:  &prefix,
			Include: container.ListBlobsInclude{UncommittedBlobs: true},
		})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, b.wrap("list uploads", prefix, err)
			}
			for _, item := range page.Segment.BlobItems {
				if item.Name != nil && !have[*item.Name] {
					out = append(out, *item.Name)
				}
			}
		}
		return out, nil
	}
	return nil, nil
}
