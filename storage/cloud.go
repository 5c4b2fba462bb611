// Cloud buckets: S3, GCS and Azure Blob through gocloud.dev v0.47.0, with the
// workarounds its drivers need:
//   - s3blob aborts a failed multipart upload on the already-cancelled context,
//     leaving the parts on the server; every write swaps in a transfer manager
//     whose FailTimeout gives AbortMultipartUpload a fresh context.
//   - azureblob's Writer.Close panics after a failed upload; every write goes
//     through Bucket.Upload (backend.go), which never reaches that code.
//   - gcsblob uploads in resumable chunks of WriterOptions.BufferSize; small
//     chunks are slow, so writes use 32 MiB.
//
// Credentials come from the drivers' standard chains (AWS_* variables, shared
// config, IMDS; GOOGLE_APPLICATION_CREDENTIALS, metadata server,
// STORAGE_EMULATOR_HOST; AZURE_STORAGE_* variables, DefaultAzureCredential).
package storage

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
)

// Part and chunk sizes per cloud: each writer buffers about
// concurrency x part size (S3: 5 x 8 MiB; GCS: one 32 MiB chunk; Azure: 4 x 8 MiB).
const (
	s3PartSize     = 8 << 20
	gcsChunkSize   = 32 << 20
	azureBlockSize = 8 << 20
	// The Azure SDK uploads one block at a time unless told otherwise.
	azureConcurrency = 4
	// abortTimeout bounds the clean-up request after a failed multipart upload.
	abortTimeout = 30 * time.Second
)

var (
	_ = s3blob.Scheme
	_ = gcsblob.Scheme
	_ = azureblob.Scheme
)

var (
	cloudMu      sync.Mutex
	cloudBuckets = map[string]*blobBackend{}
)

// openCloud opens a cloud bucket once per process and bucket URL: a job
// opens one bucket for thousands of entries, and each new client would
// fetch credentials again (IMDS, STS web identity, the GCE metadata server).
// Close on a shared bucket is a no-op.
func openCloud(ctx context.Context, u *url.URL) (Backend, error) {
	bucketURL := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
	cloudMu.Lock()
	defer cloudMu.Unlock()
	if be, ok := cloudBuckets[bucketURL.String()]; ok {
		return be, nil
	}
	b, err := blob.OpenBucket(ctx, bucketURL.String())
	if err != nil {
		return nil, err
	}
	be := &blobBackend{
		b:      b,
		base:   *redactURL(&bucketURL),
		shared: true,
	}
	switch u.Scheme {
	case "s3":
		var client *s3.Client
		if !b.As(&client) {
			b.Close()
			return nil, errNoS3Client
		}
		be.writeOpt = s3WriteOptions(client)
	case "gs":
		be.writeOpt = func(ct string) *blob.WriterOptions {
			return &blob.WriterOptions{ContentType: ct, BufferSize: gcsChunkSize}
		}
	default:
		be.writeOpt = func(ct string) *blob.WriterOptions {
			return &blob.WriterOptions{ContentType: ct, BufferSize: azureBlockSize, MaxConcurrency: azureConcurrency}
		}
	}
	cloudBuckets[bucketURL.String()] = be
	return be, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoS3Client = errString("s3blob did not expose its *s3.Client")

// s3WriteOptions replaces gocloud's transfer manager on every write with one
// that aborts failed multipart uploads on a fresh context.
func s3WriteOptions(client *s3.Client) func(string) *blob.WriterOptions {
	return func(ct string) *blob.WriterOptions {
		return &blob.WriterOptions{
			ContentType: ct,
			BufferSize:  s3PartSize,
			BeforeWrite: func(as func(any) bool) error {
				var tm *transfermanager.Client
				if as(&tm) {
					*tm = *transfermanager.New(client, func(o *transfermanager.Options) {
						o.FailTimeout = abortTimeout
						o.PartSizeBytes = s3PartSize
						o.RequestChecksumCalculation = client.Options().RequestChecksumCalculation
					})
				}
				return nil
			},
		}
	}
}
