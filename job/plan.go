package job

import (
	"fmt"
	"path"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/storage"
)

// Item is one planned export: an entry and its output ID.
type Item struct {
	Entry
	ID string
}

// maxIDBytes bounds an output ID: object stores limit keys to about 1 KiB.
const maxIDBytes = 900

// Plan gives every entry its ID (SPEC §3), rejects duplicate IDs, and keeps
// the share of Kubernetes Indexed Job index `index` of `count` (count 0 or 1:
// everything).
func Plan(entries []Entry, index, count int) ([]Item, error) {
	if count < 0 || index < 0 || (count > 0 && index >= count) || (count == 0 && index > 0) {
		return nil, usagef("shard index %d is not within shard count %d", index, count)
	}
	seen := map[string]string{}
	var items []Item
	for _, e := range entries {
		if err := storage.CheckURI(e.URI); err != nil {
			return nil, usagef("entry %q: %v", storage.Redact(e.URI), err)
		}
		if e.Format != "" {
			if err := convert.CheckFormat(e.Format); err != nil {
				return nil, usagef("entry %q: %v", storage.Redact(e.URI), err)
			}
		}
		id, err := entryID(e)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[id]; dup {
			return nil, usagef("entries %q and %q both export to ID %q (give one a NAME)", storage.Redact(prev), storage.Redact(e.URI), id)
		}
		seen[id] = e.URI
		items = append(items, Item{Entry: e, ID: id})
	}
	if count <= 1 {
		return items, nil
	}
	// Entry k belongs to index k mod count: deterministic for a given
	// manifest, each entry in exactly one share, shares differ by at most one.
	var mine []Item
	for k, it := range items {
		if k%count == index {
			mine = append(mine, it)
		}
	}
	return mine, nil
}

// entryID is the NAME if given, else the key as the manifest wrote it, else
// the source key without scheme and bucket.
func entryID(e Entry) (string, error) {
	id := e.Name
	if id == "" {
		id = e.rel
	}
	if id == "" {
		id = sourceKey(e.URI)
	}
	if err := checkID(id); err != nil {
		return "", usagef("entry %q: output ID %q: %v", storage.Redact(e.URI), id, err)
	}
	return id, nil
}

// sourceKey is a URI's key: "s3://models/runs/a/ckpt.pt?x=y" -> "runs/a/ckpt.pt";
// a local path loses its leading "/" and "../" steps.
func sourceKey(uri string) string {
	p, _ := splitQuery(uri)
	if m := schemeRE.FindString(p); m != "" {
		rest := p[len(m):]
		if strings.HasPrefix(strings.ToLower(m), "file://") {
			return localKey(rest)
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i+1:]
		}
		return ""
	}
	return localKey(p)
}

func localKey(p string) string {
	p = path.Clean(p)
	for strings.HasPrefix(p, "../") {
		p = p[3:]
	}
	return strings.TrimPrefix(p, "/")
}

// checkID refuses IDs that could leave OUT or confuse object stores.
func checkID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty")
	case len(id) > maxIDBytes:
		return fmt.Errorf("longer than %d bytes", maxIDBytes)
	case strings.HasPrefix(id, "/"):
		return fmt.Errorf("absolute")
	case strings.ContainsAny(id, "\\\x00\r\n"):
		return fmt.Errorf("holds a backslash, NUL or line break")
	case strings.HasPrefix(id, "_reports"):
		return fmt.Errorf("_reports is where run reports go")
	}
	for _, seg := range strings.Split(id, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("has an empty, . or .. path element")
		}
	}
	return nil
}
