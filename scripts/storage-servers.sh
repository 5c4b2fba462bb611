#!/usr/bin/env bash
# storage-servers.sh -- loopback S3 / GCS / Azure Blob servers for ckpt2csv's storage tests.
#
# As a library (CI):
#   source scripts/storage-servers.sh
#   storage_install            # versitygw + fake-gcs-server (go install), azurite (npm ci); cached, idempotent
#   trap storage_stop EXIT     # stop them by PID
#   storage_start              # start on 127.0.0.1 (free ports), wait, create bucket "ckpt2csv", export the env
#   go test ./storage/ ./cmd/ckpt2csv/
#
# As a command:
#   scripts/storage-servers.sh install
#   scripts/storage-servers.sh start    # prints the env to eval and the stop command; servers keep running
#   scripts/storage-servers.sh stop RUNDIR
#   scripts/storage-servers.sh run CMD...   # install, start, run CMD with the env, stop
#
# Exported for the tests: CKPT2CSV_TEST_S3, CKPT2CSV_TEST_GCS, CKPT2CSV_TEST_AZURE (bucket URLs)
# plus the credentials each client library reads from its standard environment.
# Only 127.0.0.1 is contacted. Azurite runs with --disableTelemetry (it phones home by default)
# and --skipApiVersionCheck (the Azure SDK pinned by gocloud sends a newer API version).

STORE_TOOLS=${STORE_TOOLS:-$HOME/.cache/ckpt2csv-storage-tools}   # binaries + node_modules, kept between runs
STORE_BUCKET=${STORE_BUCKET:-ckpt2csv}
VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
FAKE_GCS_VERSION=${FAKE_GCS_VERSION:-v1.56.1}
S3_AK=${S3_AK:-ckpt2csvtestak}; S3_SK=${S3_SK:-ckpt2csvtestsecret123}
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='  # Azurite's public well-known key
_STORE_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

storage_install() {
  local t0=$SECONDS npm_pid=
  mkdir -p "$STORE_TOOLS/bin" "$STORE_TOOLS/azurite"
  # Azurite: npm ci from the committed lock file; reinstalled when the lock changes.
  if ! cmp -s "$_STORE_SCRIPTS/azurite/package-lock.json" "$STORE_TOOLS/azurite/package-lock.json" ||
     [ ! -x "$STORE_TOOLS/azurite/node_modules/.bin/azurite-blob" ]; then
    cp "$_STORE_SCRIPTS/azurite/package.json" "$_STORE_SCRIPTS/azurite/package-lock.json" "$STORE_TOOLS/azurite/"
    # network-bound: runs beside the CPU-bound go builds
    ( cd "$STORE_TOOLS/azurite" && npm ci --no-audit --no-fund --loglevel=error ) &
    npm_pid=$!
  fi
  [ -x "$STORE_TOOLS/bin/versitygw-$VERSITYGW_VERSION" ] || {
    GOFLAGS= GOBIN="$STORE_TOOLS/bin" go install -ldflags='-s -w' "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" &&
      mv "$STORE_TOOLS/bin/versitygw" "$STORE_TOOLS/bin/versitygw-$VERSITYGW_VERSION"
  } || return 1
  [ -x "$STORE_TOOLS/bin/fake-gcs-server-$FAKE_GCS_VERSION" ] || {
    GOFLAGS= GOBIN="$STORE_TOOLS/bin" go install -ldflags='-s -w' "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION" &&
      mv "$STORE_TOOLS/bin/fake-gcs-server" "$STORE_TOOLS/bin/fake-gcs-server-$FAKE_GCS_VERSION"
  } || return 1
  if [ -n "$npm_pid" ] && ! wait "$npm_pid"; then
    rm -f "$STORE_TOOLS/azurite/package-lock.json"   # force a retry next time
    echo "npm ci azurite failed" >&2; return 1
  fi
  echo "storage_install: done in $((SECONDS - t0))s ($STORE_TOOLS)" >&2
}

# _free_port: a random port in 20000-59999 that nothing on 127.0.0.1 answers on.
_free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2; return 1
}

# _wait_http NAME URL OKCODES... : poll until URL answers with one of OKCODES (60 s max)
_wait_http() {
  local name=$1 url=$2; shift 2
  local code deadline=$((SECONDS + 60)) t0=$SECONDS
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$(cat "$STORE_RUN/$name.pid")" 2>/dev/null; then
      echo "$name exited during start-up; log:" >&2; cat "$STORE_RUN/log/$name.log" >&2; return 1
    fi
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
    for ok in "$@"; do [ "$code" = "$ok" ] && { echo "$name ready (HTTP $code) after $((SECONDS - t0))s" >&2; return 0; }; done
    sleep 0.2
  done
  echo "$name did not answer on $url within 60s; log:" >&2; cat "$STORE_RUN/log/$name.log" >&2; return 1
}

_s3_mkbucket() {  # CreateBucket with SigV4 (curl >= 7.75; x-amz-content-sha256 must be sent by hand on curl < 8)
  local empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_AK:$S3_SK" \
    -H "x-amz-content-sha256: $empty" "http://127.0.0.1:$S3_PORT/$1")
  case $code in 200|409) ;; *) echo "S3 CreateBucket $1: HTTP $code" >&2; return 1 ;; esac
}

_gcs_mkbucket() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\"}" "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=test")
  case $code in 200|409) ;; *) echo "GCS create bucket $1: HTTP $code" >&2; return 1 ;; esac
}

_az_mkcontainer() {  # Create Container with SharedKey auth, curl + openssl only
  local name=$1 date ver=2021-08-06 sts hexkey sig code
  date=$(LC_ALL=C TZ=GMT date '+%a, %d %b %Y %H:%M:%S GMT')
  sts="PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${ver}\n/${AZ_ACCOUNT}/${AZ_ACCOUNT}/${name}\nrestype:container"
  hexkey=$(printf '%s' "$AZ_KEY" | base64 -d | od -An -tx1 -v | tr -d ' \n')
  sig=$(printf "$sts" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:${hexkey}" -binary | base64 -w0)
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "Content-Length: 0" -H "x-ms-date: ${date}" \
    -H "x-ms-version: ${ver}" -H "Authorization: SharedKey ${AZ_ACCOUNT}:${sig}" \
    "http://127.0.0.1:$AZ_PORT/${AZ_ACCOUNT}/${name}?restype=container")
  case $code in 201|409) ;; *) echo "Azure create container $name: HTTP $code" >&2; return 1 ;; esac
}

# storage_env: the environment the tests and the CLI need, as shell export lines.
storage_env() {
  cat <<EOF2
export STORE_RUN='$STORE_RUN'
export AWS_ACCESS_KEY_ID=$S3_AK AWS_SECRET_ACCESS_KEY=$S3_SK AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export CKPT2CSV_TEST_S3='s3://$STORE_BUCKET?endpoint=http://127.0.0.1:$S3_PORT&use_path_style=true&region=us-east-1&request_checksum_calculation=when_required&response_checksum_validation=when_required'
export STORAGE_EMULATOR_HOST=127.0.0.1:$GCS_PORT
export CKPT2CSV_TEST_GCS='gs://$STORE_BUCKET'
export AZURE_STORAGE_ACCOUNT=$AZ_ACCOUNT AZURE_STORAGE_KEY='$AZ_KEY'
export CKPT2CSV_TEST_AZURE='azblob://$STORE_BUCKET?protocol=http&domain=127.0.0.1:$AZ_PORT'
EOF2
}

storage_start() {
  STORE_RUN=${STORE_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/ckpt2csv-storage.XXXXXX")}
  mkdir -p "$STORE_RUN"/{s3,gcs,az,log}
  S3_PORT=${S3_PORT:-$(_free_port)}; GCS_PORT=${GCS_PORT:-$(_free_port)}; AZ_PORT=${AZ_PORT:-$(_free_port)}
  local t0=$SECONDS
  ROOT_ACCESS_KEY=$S3_AK ROOT_SECRET_KEY=$S3_SK \
    "$STORE_TOOLS/bin/versitygw-$VERSITYGW_VERSION" --port "127.0.0.1:$S3_PORT" --quiet posix "$STORE_RUN/s3" \
    >"$STORE_RUN/log/versitygw.log" 2>&1 </dev/null &
  echo $! >"$STORE_RUN/versitygw.pid"
  "$STORE_TOOLS/bin/fake-gcs-server-$FAKE_GCS_VERSION" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -external-url "http://127.0.0.1:$GCS_PORT" -public-host "127.0.0.1:$GCS_PORT" \
    -backend filesystem -filesystem-root "$STORE_RUN/gcs" -log-level warn \
    >"$STORE_RUN/log/fake-gcs-server.log" 2>&1 </dev/null &
  echo $! >"$STORE_RUN/fake-gcs-server.pid"
  # node runs the .bin script itself (exec via its shebang), so $! is the server's PID
  "$STORE_TOOLS/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
    --location "$STORE_RUN/az" --silent --disableTelemetry --skipApiVersionCheck \
    >"$STORE_RUN/log/azurite.log" 2>&1 </dev/null &
  echo $! >"$STORE_RUN/azurite.pid"

  # unauthenticated probes: versitygw answers 403, fake-gcs 200, azurite 403 once listening
  _wait_http versitygw       "http://127.0.0.1:$S3_PORT/" 403 &&
  _wait_http fake-gcs-server "http://127.0.0.1:$GCS_PORT/storage/v1/b" 200 &&
  _wait_http azurite         "http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT?comp=list" 403 || { storage_stop; return 1; }
  _s3_mkbucket "$STORE_BUCKET" && _gcs_mkbucket "$STORE_BUCKET" && _az_mkcontainer "$STORE_BUCKET" || { storage_stop; return 1; }
  storage_env >"$STORE_RUN/env"
  eval "$(storage_env)"
  echo "storage_start: all up in $((SECONDS - t0))s, bucket '$STORE_BUCKET'; S3 :$S3_PORT GCS :$GCS_PORT Azure :$AZ_PORT; run dir $STORE_RUN" >&2
}

# storage_stop [RUNDIR]: TERM each server by PID, wait up to 10 s, then KILL; remove the run dir.
storage_stop() {
  local run=${1:-${STORE_RUN:-}} n p
  [ -n "$run" ] && [ -d "$run" ] || return 0
  for n in versitygw fake-gcs-server azurite; do
    [ -f "$run/$n.pid" ] && kill "$(cat "$run/$n.pid")" 2>/dev/null || true
  done
  for n in versitygw fake-gcs-server azurite; do
    [ -f "$run/$n.pid" ] || continue
    p=$(cat "$run/$n.pid")
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { echo "$n ($p) ignored TERM; KILL" >&2; kill -9 "$p" 2>/dev/null || true; }
    rm -f "$run/$n.pid"
  done
  rm -rf "$run"
  echo "storage_stop: stopped" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) storage_install ;;
    start)   storage_install && storage_start && { cat "$STORE_RUN/env"; echo "# stop: $0 stop $STORE_RUN"; } ;;
    stop)    storage_stop "${2:?usage: $0 stop RUNDIR}" ;;
    env)     cat "${2:?usage: $0 env RUNDIR}/env" ;;
    run)     shift; storage_install; trap storage_stop EXIT; storage_start; "$@" ;;
    *)       echo "usage: $0 install | start | stop RUNDIR | env RUNDIR | run CMD..." >&2; exit 2 ;;
  esac
fi
