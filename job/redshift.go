package job

// OUT/ID/redshift.manifest (--redshift-manifest): the Amazon Redshift COPY
// manifest of an export's shards, so that
//
//	COPY t FROM 's3://OUT/ID/redshift.manifest' ... MANIFEST GZIP CSV IGNOREHEADER 1
//
// loads exactly the shards of one complete export. Each entry is mandatory
// (COPY fails rather than load a partial export) and carries the stored
// object size in meta.content_length, as Redshift's manifest format defines.
// It is written after the shards and before the sidecar, which stays last.

import (
	"context"
	"encoding/json"
	"net/url"

	"ckpt2csv/convert"
	"ckpt2csv/storage"
)

// redshiftManifest is the manifest's object name in OUT/ID.
const redshiftManifest = "redshift.manifest"

type redshiftEntry struct {
	URL       string `json:"url"`
	Mandatory bool   `json:"mandatory"`
	Meta      struct {
		ContentLength int64 `json:"content_length"`
	} `json:"meta"`
}

// RedshiftManifest renders the manifest of sc's shards; uri gives an object
// name's URI.
func RedshiftManifest(sc *convert.Sidecar, uri func(name string) string) ([]byte, error) {
	m := struct {
		Entries []redshiftEntry `json:"entries"`
	}{Entries: []redshiftEntry{}}
	for _, s := range sc.Shards {
		e := redshiftEntry{URL: plainURL(uri(s.Path)), Mandatory: true}
		e.Meta.ContentLength = s.StoredBytes
		m.Entries = append(m.Entries, e)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	return append(b, '\n'), err
}

// plainURL is scheme://bucket/key: Redshift reads no query parameters, and
// gocloud's (region, endpoint) are no business of a warehouse. The URI is
// already redacted of credentials.
func plainURL(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return storage.Redact(uri)
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

func (r *Runner) writeRedshiftManifest(ctx context.Context, dir outDir, sc *convert.Sidecar) error {
	body, err := RedshiftManifest(sc, func(name string) string { return r.out.URI(dir.key(name)) })
	if err != nil {
		return err
	}
	return r.out.WriteAll(ctx, dir.key(redshiftManifest), body, "application/json")
}

// ensureRedshiftManifest gives an up-to-date export written without
// --redshift-manifest its manifest, from its sidecar.
func (r *Runner) ensureRedshiftManifest(ctx context.Context, dir outDir, sc *convert.Sidecar) error {
	_, err := r.out.Stat(ctx, dir.key(redshiftManifest))
	if err == nil || !storage.IsNotFound(err) {
		return err
	}
	return r.writeRedshiftManifest(ctx, dir, sc)
}
