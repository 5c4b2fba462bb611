// Checks for what a cloud can hold back after an aborted write: incomplete
// S3 multipart uploads and uncommitted Azure blocks.
package storage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func init() {
	leftoverCheckers["s3"] = s3NoMultipartUploads
	leftoverCheckers["azblob"] = azureNoUncommittedBlobs
}

func s3NoMultipartUploads(t *testing.T, b *Bucket, prefix string, _ []string) {
	t.Helper()
	var c *s3.Client
	if !b.As(&c) {
		t.Fatal("no *s3.Client")
	}
	bucket := strings.SplitN(strings.TrimPrefix(b.URI(""), "s3://"), "/", 2)[0]
	out, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("incomplete multipart upload left behind: %s (%s)", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

func azureNoUncommittedBlobs(t *testing.T, b *Bucket, prefix string, keys []string) {
	t.Helper()
	var c *container.Client
	if !b.As(&c) {
		t.Fatal("no *container.Client")
	}
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &prefix,
		Include: container.ListBlobsInclude{UncommittedBlobs: true},
	})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list blobs: %v", err)
		}
		for _, item := range page.Segment.BlobItems {
			if !slices.Contains(keys, *item.Name) {
				t.Errorf("uncommitted blob left behind: %s", *item.Name)
			}
		}
	}
}
