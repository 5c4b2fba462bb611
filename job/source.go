package job

import (
	"context"
	"fmt"
	"strings"

	"ckpt2csv/convert/tfckpt"
	"ckpt2csv/storage"
)

// Decorator wraps a bucket the job opens, under its retries (tests inject
// faults with storage.WithFaults).
type Decorator func(*storage.Bucket) *storage.Bucket

// openBucket opens the bucket of uri, retrying transient storage errors.
func openBucket(ctx context.Context, uri string, deco Decorator) (*storage.Bucket, string, error) {
	b, key, err := storage.OpenURI(ctx, uri)
	if err != nil {
		return nil, "", err
	}
	if deco != nil {
		b = deco(b)
	}
	return storage.WithRetry(b, storage.RetryPolicy{}), key, nil
}

// OpenSource opens the checkpoint object a URI names. A URI that names a
// directory (a TensorFlow checkpoint folder or SavedModel) opens the bundle
// index inside it. The caller closes the bucket.
func OpenSource(ctx context.Context, uri string) (*storage.Bucket, *storage.Object, error) {
	return openSource(ctx, uri, nil)
}

func openSource(ctx context.Context, uri string, deco Decorator) (*storage.Bucket, *storage.Object, error) {
	b, key, err := openBucket(ctx, uri, deco)
	if err != nil {
		return nil, nil, err
	}
	obj, err := b.Object(ctx, key)
	if storage.IsNotFound(err) || (err == nil && strings.HasSuffix(key, "/")) {
		if k, ok, rerr := resolveDir(ctx, b, key); rerr != nil {
			err = rerr
		} else if ok {
			obj, err = b.Object(ctx, k)
		} else if idx, ierr := b.Object(ctx, key+".index"); ierr == nil {
			// a TensorFlow checkpoint prefix, as tf.train.latest_checkpoint gives it
			obj, err = idx, nil
		}
	}
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return b, obj, nil
}

// resolveDir finds the checkpoint inside the directory key, if it is one.
func resolveDir(ctx context.Context, b *storage.Bucket, key string) (string, bool, error) {
	prefix := strings.TrimSuffix(key, "/") + "/"
	if prefix == "/" {
		prefix = ""
	}
	keys, err := b.List(ctx, prefix)
	if err != nil || len(keys) == 0 {
		return "", false, err
	}
	rel := make([]string, len(keys))
	for i, k := range keys {
		rel[i] = strings.TrimPrefix(k, prefix)
	}
	k, err := tfckpt.ResolveDir(ctx,
		func(context.Context) ([]string, error) { return rel, nil },
		func(ctx context.Context, k string) ([]byte, error) { return b.ReadAll(ctx, prefix+k) })
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", b.URI(prefix), err)
	}
	return prefix + k, true, nil
}
