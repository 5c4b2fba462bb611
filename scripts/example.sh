#!/usr/bin/env bash
# Builds ckpt2csv, runs the batch job over configs/examples/manifest.txt (small
# checkpoints bundled in the repo) into ./out/example, and verifies each export.
# Needs only Go; extra arguments go to `ckpt2csv run` (e.g. --compression zstd).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
mkdir -p bin
go build -o bin/ckpt2csv ./cmd/ckpt2csv
out=out/example
bin/ckpt2csv run --manifest configs/examples/manifest.txt --out "$out" --log-format console "$@"
for meta in $(find "$out" -name metadata.json | sort); do
  bin/ckpt2csv verify "$(dirname "$meta")"
done
echo
echo "CSV shards and metadata.json for each checkpoint are under $out/:"
find "$out" -type f | sort
