#!/usr/bin/env bash
# Runs the snippets of docs/loading.md for real: the pandas ones with
# /usr/bin/python3 (pandas, numpy) and the DuckDB SQL through DuckDB's Node.js
# package, installed here into a temporary folder with npm.
#   DUCKDB_NODE_API=1.5.6-r.1   the @duckdb/node-api version to install
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$dir" && npm init -y >/dev/null && npm install --no-audit --no-fund "@duckdb/node-api@${DUCKDB_NODE_API:-1.5.6-r.1}" >/dev/null)
CKPT2CSV_DUCKDB_NODE_DIR="$dir" go test -count=1 -run 'TestLoadingDocs' -v ./cmd/ckpt2csv/
