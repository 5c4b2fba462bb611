// Opening a bucket from a URI, and the redacted form of URIs for messages.
package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// OpenURI opens the bucket holding uri and returns the key inside it.
//
//	s3://bkt/runs/a/ckpt.pt?region=eu-west-1  -> bucket s3://bkt?region=eu-west-1, key "runs/a/ckpt.pt"
//	gs://bkt/k   azblob://container/k   mem://name/k
//	/abs/path, rel/path, file:///abs/path      -> the local file system, key "abs/path"
//
// Local paths open a bucket rooted at "/", so any file can be read and any
// directory written, with temporary files created beside their target (a
// rename never crosses file systems; List never shows them). mem:// buckets
// are shared process-wide by name.
func OpenURI(ctx context.Context, uri string) (*Bucket, string, error) {
	if err := CheckURI(uri); err != nil {
		return nil, "", err
	}
	if !schemeRE.MatchString(uri) {
		return openLocal(uri, nil)
	}
	u, _ := url.Parse(uri)
	key := strings.TrimPrefix(u.Path, "/")
	switch strings.ToLower(u.Scheme) {
	case "file":
		p := u.Path
		if u.Host == "." {
			p = strings.TrimPrefix(p, "/")
		} else if u.Host != "" && u.Host != "localhost" {
			return nil, "", fmt.Errorf("file URI %q: host %q is not this machine", Redact(uri), u.Host)
		}
		if p == "" {
			return nil, "", fmt.Errorf("file URI %q has no path", Redact(uri))
		}
		return openLocal(filepath.FromSlash(p), u.Query())
	case "mem":
		if len(u.Query()) > 0 {
			return nil, "", fmt.Errorf("mem URI %q: takes no parameters", Redact(uri))
		}
		return NewBucket(memBucket(u.Host)), key, nil
	default: // s3, gs, azblob
		be, err := openCloud(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("open %s: %w", Redact(uri), scrubbed(err, u))
		}
		return NewBucket(be), key, nil
	}
}

// CheckURI says what is wrong with the form of uri (it does not parse, its
// scheme is unknown, it names no bucket) without opening anything: a
// manifest's entries are checked before any is exported.
func CheckURI(uri string) error {
	if uri == "" {
		return fmt.Errorf("empty URI")
	}
	if !schemeRE.MatchString(uri) {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("invalid URI %q: %v", Redact(uri), redactErr(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "file", "mem":
		return nil
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return fmt.Errorf("URI %q names no bucket", Redact(uri))
		}
		return nil
	}
	return fmt.Errorf("URI %q: unsupported scheme %q (want s3, gs, azblob, file, mem or a local path)", Redact(uri), u.Scheme)
}

// openLocal opens the local file system as a bucket rooted at "/".
func openLocal(p string, q url.Values) (*Bucket, string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, "", err
	}
	opts := &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite}
	for k, vs := range q {
		switch k {
		case "create_dir", "no_tmp_dir", "metadata":
			// always on: directories are made as keys are written; temp files
			// go beside their target; no .attrs sidecar files.
		case "dir_file_mode":
			m, err := strconv.ParseUint(vs[0], 0, 32)
			if err != nil {
				return nil, "", fmt.Errorf("file URI: invalid dir_file_mode %q", vs[0])
			}
			opts.DirFileMode = os.FileMode(m)
		default:
			return nil, "", fmt.Errorf("file URI: unsupported parameter %q", k)
		}
	}
	b, err := fileblob.OpenBucket(string(filepath.Separator), opts)
	if err != nil {
		return nil, "", err
	}
	be := &blobBackend{
		b:        b,
		base:     url.URL{Scheme: "file"},
		local:    true,
		writeOpt: plainWriteOptions,
	}
	key := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	return NewBucket(be), key, nil
}

func plainWriteOptions(contentType string) *blob.WriterOptions {
	return &blob.WriterOptions{ContentType: contentType}
}

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blobBackend{}
)

// memBucket returns the process-wide in-memory bucket called name.
func memBucket(name string) *blobBackend {
	memMu.Lock()
	defer memMu.Unlock()
	be, ok := memBuckets[name]
	if !ok {
		be = &blobBackend{
			b:        memblob.OpenBucket(nil),
			base:     url.URL{Scheme: "mem", Host: name},
			shared:   true,
			writeOpt: plainWriteOptions,
		}
		memBuckets[name] = be
	}
	return be
}

// secretParam matches query parameter names whose values are secrets.
var secretParam = regexp.MustCompile(`(?i)(secret|token|passw|sig|credential|key|sas|auth)`)

// nonSecretParams are gocloud parameters that match secretParam but are not secret.
var nonSecretParams = map[string]bool{"kmskeyid": true}

// Redact removes userinfo and secret query values from a URI for display.
// Non-URLs (local paths) are returned unchanged.
func Redact(uri string) string {
	if !schemeRE.MatchString(uri) {
		return uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		// Do not echo something we cannot parse: it may hold a secret.
		if i := strings.Index(uri, "://"); i >= 0 {
			return uri[:i+3] + "REDACTED"
		}
		return "REDACTED"
	}
	return redactURL(u).String()
}

func redactURL(u *url.URL) *url.URL {
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		q := r.Query()
		for k := range q {
			if secretParam.MatchString(k) && !nonSecretParams[strings.ToLower(k)] {
				q[k] = []string{"REDACTED"}
			}
		}
		r.RawQuery = q.Encode()
	}
	r.Fragment = ""
	r.RawFragment = ""
	return &r
}

// redactErr keeps url.Parse errors from quoting the whole (secret-bearing) URL.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// scrubbedError hides a URL's secrets in an error from a library that quotes
// the URL it was given; errors.Is/As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubbed(err error, u *url.URL) error {
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	for k, vs := range u.Query() {
		if secretParam.MatchString(k) && !nonSecretParams[strings.ToLower(k)] {
			for _, v := range vs {
				secrets = append(secrets, v, url.QueryEscape(v))
			}
		}
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
		}
	}
	return &scrubbedError{msg: msg, err: err}
}
