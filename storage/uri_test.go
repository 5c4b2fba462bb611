package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"google.golang.org/api/googleapi"
)

func TestOpenURISplitsBucketAndKey(t *testing.T) {
	wd, _ := os.Getwd()
	cases := []struct {
		uri, key, uriOfKey string
	}{
		{"/tmp/x/ckpt.pt", "tmp/x/ckpt.pt", "file:///tmp/x/ckpt.pt"},
		{"/tmp/x/out/", "tmp/x/out", "file:///tmp/x/out"},
		{"rel/ckpt.pt", strings.TrimPrefix(filepath.Join(wd, "rel/ckpt.pt"), "/"), "file://" + filepath.Join(wd, "rel/ckpt.pt")},
		{"file:///tmp/a%20b/c.npy", "tmp/a b/c.npy", "file:///tmp/a%20b/c.npy"},
		{"file:///tmp/out?create_dir=1", "tmp/out", "file:///tmp/out"},
		{"mem://bkt/runs/a.pt", "runs/a.pt", "mem://bkt/runs/a.pt"},
		{"./weights:v1.pt", strings.TrimPrefix(filepath.Join(wd, "weights:v1.pt"), "/"), "file://" + filepath.Join(wd, "weights:v1.pt")},
	}
	for _, c := range cases {
		b, key, err := OpenURI(context.Background(), c.uri)
		if err != nil {
			t.Errorf("OpenURI(%q): %v", c.uri, err)
			continue
		}
		if key != c.key || b.URI(key) != c.uriOfKey {
			t.Errorf("OpenURI(%q) = key %q, URI %q; want %q, %q", c.uri, key, b.URI(key), c.key, c.uriOfKey)
		}
		b.Close()
	}
}

func TestOpenURIRejects(t *testing.T) {
	for _, uri := range []string{
		"", "ftp://host/x", "s3:///key", "file://otherhost/x", "file:///tmp/x?bogus=1", "mem://b/k?x=1",
	} {
		if b, _, err := OpenURI(context.Background(), uri); err == nil {
			b.Close()
			t.Errorf("OpenURI(%q) succeeded", uri)
		}
	}
}

func TestOpenURICloudKeysAndRedaction(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	b, key, err := OpenURI(context.Background(), "s3://bkt/runs/a/ckpt.pt?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if key != "runs/a/ckpt.pt" {
		t.Fatalf("key %q", key)
	}
	if got, want := b.URI(key), "s3://bkt/runs/a/ckpt.pt?endpoint=http%3A%2F%2F127.0.0.1%3A1&region=us-east-1&use_path_style=true"; got != want {
		t.Fatalf("URI = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"s3://AKID:SECRET@bkt/k?region=x":                   "s3://bkt/k?region=x",
		"azblob://c/k?sas_token=sv%3D2020%26sig%3Dabc":      "azblob://c/k?sas_token=REDACTED",
		"gs://b/k?access_token=ya29.x&x-goog-signature=ab":  "gs://b/k?access_token=REDACTED&x-goog-signature=REDACTED",
		"s3://b/k?kmskeyid=arn:aws:kms:1&region=r":          "s3://b/k?kmskeyid=arn%3Aaws%3Akms%3A1&region=r",
		"https://acct.blob.core.windows.net/c/k?sv=1&sig=S": "https://acct.blob.core.windows.net/c/k?sig=REDACTED&sv=1",
		"/local/path/with:colon":                            "/local/path/with:colon",
		"s3://b/k#frag":                                     "s3://b/k",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact("s3://user:pa%zzss@bkt/k"); strings.Contains(got, "pa") {
		t.Errorf("Redact of an unparsable URI leaked %q", got)
	}
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	_, _, err := OpenURI(context.Background(), "s3://AKID:TOPSECRET@bkt/k?sig=TOPSECRET&%zz")
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error %v leaks a secret", err)
	}
	_, _, err = OpenURI(context.Background(), "ftp://u:TOPSECRET@h/k?token=TOPSECRET")
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error %v leaks a secret", err)
	}
}

func httpResp(code int) *http.Response {
	return &http.Response{StatusCode: code, Header: http.Header{}, Request: &http.Request{}}
}

func TestIsTransient(t *testing.T) {
	aws := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: httpResp(code)}, Err: errors.New("api error")}}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"S3 503 SlowDown", aws(503), true},
		{"S3 500", aws(500), true},
		{"S3 403", aws(403), false},
		{"S3 416", aws(416), false},
		{"GCS 429", &googleapi.Error{Code: 429}, true},
		{"GCS 502", fmt.Errorf("read: %w", &googleapi.Error{Code: 502}), true},
		{"GCS 400", &googleapi.Error{Code: 400}, false},
		{"Azure 500", &azcore.ResponseError{StatusCode: 500}, true},
		{"Azure 408", &azcore.ResponseError{StatusCode: 408}, true},
		{"Azure 409", &azcore.ResponseError{StatusCode: 409}, false},
		{"not found", &notFound{cause: os.ErrNotExist}, false},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"unexpected EOF", fmt.Errorf("body: %w", io.ErrUnexpectedEOF), true},
		{"deadline", context.DeadlineExceeded, true},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"marked transient", Transient(errors.New("x")), true},
		{"marked permanent", Permanent(aws(503)), false},
		{"plain error", errors.New("invalid checkpoint"), false},
		{"wrapped storage error", &Error{Op: "read", URI: "s3://b/k", Err: aws(503)}, true},
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestSiblingKey(t *testing.T) {
	cases := []struct{ key, rel, want string }{
		{"runs/a/index.json", "model-00001.safetensors", "runs/a/model-00001.safetensors"},
		{"runs/a/index.json", "sub/./x.bin", "runs/a/sub/x.bin"},
		{"index.json", "x.bin", "x.bin"},
	}
	for _, c := range cases {
		if got, err := SiblingKey(c.key, c.rel); err != nil || got != c.want {
			t.Errorf("SiblingKey(%q, %q) = %q, %v; want %q", c.key, c.rel, got, err, c.want)
		}
	}
	for _, rel := range []string{"..", "../x", "a/../../x", "/abs", "", "a\\b", "c:/x", "x\x00y", "./"} {
		if got, err := SiblingKey("runs/a/k", rel); err == nil {
			t.Errorf("SiblingKey(%q) = %q; want an error", rel, got)
		}
	}
}
