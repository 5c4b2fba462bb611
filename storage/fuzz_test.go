package storage

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzSiblingKey: a sibling named by a checkpoint (untrusted) never leaves
// the checkpoint's directory.
func FuzzSiblingKey(f *testing.F) {
	for _, s := range []string{"model-00001-of-00002.safetensors", "../x", "a/../../b", "/etc/passwd", "a/./b", "", "..", "a//b", "c:\\x"} {
		f.Add("runs/a/model.safetensors.index.json", s)
	}
	f.Fuzz(func(t *testing.T, key, rel string) {
		got, err := SiblingKey(key, rel)
		if err != nil {
			return
		}
		dir := path.Dir(key)
		if dir == "." || dir == "/" {
			dir = ""
		} else {
			dir += "/"
		}
		if !strings.HasPrefix(got, dir) || got == dir {
			t.Fatalf("SiblingKey(%q, %q) = %q, outside %q", key, rel, got, dir)
		}
		for _, part := range strings.Split(strings.TrimPrefix(got, dir), "/") {
			if part == ".." || part == "." || part == "" {
				t.Fatalf("SiblingKey(%q, %q) = %q has element %q", key, rel, got, part)
			}
		}
	})
}

// FuzzRedact: a redacted URI never shows a password or a secret parameter's value.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"s3://AKID:SECRETSECRET@bkt/k?region=x", "azblob://c/k?sas_token=SECRETSECRET", "gs://b/k?access_token=SECRETSECRET", "/local/path", "s3://b/%zz?sig=SECRETSECRET"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got := Redact(uri)
		if !schemeRE.MatchString(uri) {
			return
		}
		u, err := url.Parse(uri)
		if err != nil {
			if strings.Contains(got, "@") {
				t.Fatalf("Redact(%q) = %q keeps userinfo", uri, got)
			}
			return
		}
		if p, ok := u.User.Password(); ok && len(p) >= 4 && strings.Contains(got, p) && !strings.Contains(u.Host+u.Path, p) {
			t.Fatalf("Redact(%q) = %q shows the password", uri, got)
		}
		for k, vs := range u.Query() {
			if !secretParam.MatchString(k) || nonSecretParams[strings.ToLower(k)] {
				continue
			}
			for _, v := range vs {
				if len(v) >= 4 && strings.Contains(got, url.QueryEscape(v)) && !strings.Contains(u.Host+u.Path, v) && v != "REDACTED" {
					t.Fatalf("Redact(%q) = %q shows %s=%q", uri, got, k, v)
				}
			}
		}
	})
}
