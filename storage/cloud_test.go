// Checks for what a cloud can hold back after an aborted write: incomplete
// S3 multipart uploads and uncommitted Azure blocks.
package storage

import (
	"context"
	"testing"
)

func init() {
	leftoverCheckers["s3"] = noPendingUploads
	leftoverCheckers["azblob"] = noPendingUploads
}

func noPendingUploads(t *testing.T, b *Bucket, prefix string, _ []string) {
	t.Helper()
	pending, err := b.PendingUploads(context.Background(), prefix)
	if err != nil {
		t.Fatalf("PendingUploads: %v", err)
	}
	for _, p := range pending {
		t.Errorf("upload left behind: %s", p)
	}
}
