// Package job turns a manifest into a plan of checkpoints to export, runs the
// exports (several at once, resuming where a previous run stopped) and writes
// the run report. It knows checkpoints and outputs, not bytes: storage reads
// and writes, convert reads formats and writes CSV.
package job

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"ckpt2csv/internal/glob"
	"ckpt2csv/storage"
)

// ErrUsage marks a bad manifest, flag or config: nothing was done (exit 2).
var ErrUsage = errors.New("usage error")

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// Entry is one checkpoint to export.
type Entry struct {
	URI    string // absolute: a gocloud URL with key, or a local path
	Name   string // the NAME column, or "" (the ID is then derived from the key)
	Format string // "" or a --format name
	rel    string // the entry as written, when relative to the manifest
}

// maxManifestBytes bounds a manifest: a million entries fit easily.
const maxManifestBytes = 256 << 20

// ReadManifest reads and parses the manifest at uri. Relative entries are
// resolved against the manifest's directory; globs are expanded by listing.
func ReadManifest(ctx context.Context, uri string) ([]Entry, error) {
	b, key, err := openBucket(ctx, uri, nil)
	if err != nil {
		return nil, usagef("manifest: %v", err)
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		return nil, usagef("manifest %s: %v", storage.Redact(uri), err)
	}
	if len(data) > maxManifestBytes {
		return nil, usagef("manifest %s: larger than %d bytes", storage.Redact(uri), maxManifestBytes)
	}
	entries, err := ParseManifest(data)
	if err != nil {
		return nil, usagef("manifest %s: %v", storage.Redact(uri), err)
	}
	return resolveEntries(ctx, uri, entries)
}

// ParseManifest parses manifest text: one "URI [NAME]" per line (blank lines
// and # comments ignored), or JSON Lines {"uri","name","format"}, told apart
// by the first non-blank character.
func ParseManifest(data []byte) ([]Entry, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	jsonl := len(trimmed) > 0 && trimmed[0] == '{'
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var e Entry
		if jsonl {
			var j struct {
				URI    string `json:"uri"`
				Name   string `json:"name"`
				Format string `json:"format"`
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&j); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			if dec.More() {
				return nil, fmt.Errorf("line %d: more than one JSON value", n)
			}
			e = Entry{URI: j.URI, Name: j.Name, Format: j.Format}
		} else {
			f := strings.Fields(line)
			if len(f) > 2 {
				return nil, fmt.Errorf("line %d: want \"URI [NAME]\", got %d fields", n, len(f))
			}
			e.URI = f[0]
			if len(f) == 2 {
				e.Name = f[1]
			}
		}
		if e.URI == "" {
			return nil, fmt.Errorf("line %d: no uri", n)
		}
		if e.Name != "" {
			if err := checkID(e.Name); err != nil {
				return nil, fmt.Errorf("line %d: name %q: %v", n, e.Name, err)
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

func isAbsolute(uri string) bool { return schemeRE.MatchString(uri) || strings.HasPrefix(uri, "/") }

// resolveEntries makes relative entries absolute against the manifest's
// directory and expands globs.
func resolveEntries(ctx context.Context, manifestURI string, entries []Entry) ([]Entry, error) {
	base := manifestDir(manifestURI)
	var out []Entry
	for _, e := range entries {
		if !isAbsolute(e.URI) {
			rel := path.Clean(e.URI)
			if rel == ".." || strings.HasPrefix(rel, "../") {
				// a relative entry may climb out of the manifest's folder; its ID is then its key
				e.URI = joinURI(base, rel)
			} else {
				e.rel = rel
				e.URI = joinURI(base, rel)
			}
		}
		if !strings.ContainsAny(uriPath(e.URI), "*?[") {
			out = append(out, e)
			continue
		}
		matches, err := expandGlob(ctx, e)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, usagef("manifest entry %q matches nothing", storage.Redact(e.URI))
		}
		out = append(out, matches...)
	}
	return out, nil
}

// manifestDir is the URI of the manifest's directory, with its query kept.
func manifestDir(uri string) string {
	p, q := splitQuery(uri)
	if i := strings.LastIndex(p, "/"); i >= 0 && !strings.HasSuffix(p[:i+1], "://") {
		return p[:i] + q
	}
	if schemeRE.MatchString(p) {
		return p + q
	}
	return "." + q
}

// joinURI appends a relative key to a directory URI, keeping its query. In
// a bucket, ".." steps are resolved here: a store takes keys literally.
func joinURI(dir, rel string) string {
	p, q := splitQuery(dir)
	if p == "." && !schemeRE.MatchString(p) {
		return rel
	}
	if m := schemeRE.FindString(p); m != "" {
		bucket, key, _ := strings.Cut(p[len(m):], "/")
		return m + bucket + "/" + strings.TrimPrefix(path.Join(key, rel), "/") + q
	}
	return strings.TrimSuffix(p, "/") + "/" + rel + q
}

// queryRE finds where a URI's query starts: at a '?' that begins name=value,
// as "?" is also a glob character in the path.
var queryRE = regexp.MustCompile(`\?[A-Za-z0-9_.-]+=`)

func splitQuery(uri string) (string, string) {
	if !schemeRE.MatchString(uri) {
		return uri, ""
	}
	if loc := queryRE.FindStringIndex(uri); loc != nil {
		return uri[:loc[0]], uri[loc[0]:]
	}
	return uri, ""
}

// uriPath is the part of a URI that globs apply to.
func uriPath(uri string) string {
	p, _ := splitQuery(uri)
	return p
}

// expandGlob lists the bucket under the glob's fixed prefix and keeps the
// keys it matches; * stays within a path segment, ** crosses them.
func expandGlob(ctx context.Context, e Entry) ([]Entry, error) {
	b, key, err := openBucket(ctx, e.URI, nil)
	if err != nil {
		return nil, usagef("manifest entry %q: %v", storage.Redact(e.URI), err)
	}
	defer b.Close()
	fixed := key[:strings.IndexAny(key, "*?[")]
	prefix := fixed[:strings.LastIndex(fixed, "/")+1]
	re, err := glob.Compile(key, true)
	if err != nil {
		return nil, usagef("manifest entry %q: %v", storage.Redact(e.URI), err)
	}
	keys, err := b.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", b.URI(prefix), err)
	}
	var out []Entry
	for _, k := range keys {
		if !re.MatchString(k) {
			continue
		}
		m := Entry{URI: replaceKey(e.URI, key, k), Format: e.Format}
		if e.rel != "" {
			// keep the ID relative, as the entry was written
			m.rel = path.Join(strings.TrimSuffix(e.rel, strings.TrimPrefix(key, prefix)), strings.TrimPrefix(k, prefix))
		}
		out = append(out, m)
	}
	if e.Name != "" && len(out) > 1 {
		return nil, usagef("manifest entry %q: a NAME cannot apply to a glob matching %d objects", storage.Redact(e.URI), len(out))
	} else if len(out) == 1 {
		out[0].Name = e.Name
	}
	return out, nil
}

// replaceKey swaps the key inside a URI. A local path's key is its absolute
// path without the leading "/" (storage.OpenURI), whatever the path says.
func replaceKey(uri, oldKey, newKey string) string {
	if !schemeRE.MatchString(uri) {
		return "/" + newKey
	}
	p, q := splitQuery(uri)
	return strings.TrimSuffix(p, oldKey) + newKey + q
}
