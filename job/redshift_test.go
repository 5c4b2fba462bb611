package job

import (
	"testing"

	"ckpt2csv/convert"
)

func TestRedshiftManifestURLsArePlainS3Keys(t *testing.T) {
	sc := &convert.Sidecar{Shards: []convert.ShardInfo{
		{Path: "part-00000.csv.gz", StoredBytes: 123},
		{Path: "part-00001.csv.gz", StoredBytes: 45},
	}}
	uri := func(name string) string {
		// what Bucket.URI gives for an s3 bucket opened with gocloud parameters
		return "s3://user:REDACTED@exports/out/runs/a/" + name + "?endpoint=http%3A%2F%2F127.0.0.1%3A7070&region=eu-west-1#x"
	}
	got, err := RedshiftManifest(sc, uri)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "entries": [
    {
      "url": "s3://exports/out/runs/a/part-00000.csv.gz",
      "mandatory": true,
      "meta": {
        "content_length": 123
      }
    },
    {
      "url": "s3://exports/out/runs/a/part-00001.csv.gz",
      "mandatory": true,
      "meta": {
        "content_length": 45
      }
    }
  ]
}
`
	if string(got) != want {
		t.Errorf("manifest:\n%s\nwant:\n%s", got, want)
	}
	empty, _ := RedshiftManifest(&convert.Sidecar{}, uri)
	if string(empty) != "{\n  \"entries\": []\n}\n" {
		t.Errorf("manifest of an export without shards: %s", empty)
	}
}
