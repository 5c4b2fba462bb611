#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh machine with Go and npm:
# installs and starts the loopback S3/GCS/Azure servers, runs every test with
# the race detector, then each fuzz target for a short while.
#   FUZZTIME=10s   per fuzz target (0 skips fuzzing); new inputs are minimised for
#                  at most 2 s, so a short run fuzzes rather than minimises
#   NO_CLOUD=1     skip the storage servers (their tests then skip)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
FUZZTIME=${FUZZTIME:-10s}

go mod download
go vet ./...

if [ -z "${NO_CLOUD:-}" ]; then
  # shellcheck source=scripts/storage-servers.sh
  source scripts/storage-servers.sh
  storage_install
  trap storage_stop EXIT
  storage_start
fi

go test -race -count=1 -timeout 30m ./...

if [ "$FUZZTIME" != "0" ]; then
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "fuzz $pkg $target ($FUZZTIME)"
      before=$(ls "$dir/testdata/fuzz/$target" 2>/dev/null | sort || true)
      log=$(mktemp)
      if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 2s "$pkg" 2>&1 | tee "$log"; then
        after=$(ls "$dir/testdata/fuzz/$target" 2>/dev/null | sort || true)
        # Go 1.26's fuzz coordinator can report the end of -fuzztime itself as
        # "context deadline exceeded" (go.dev/issue/75804); a real failure
        # writes its input to testdata/fuzz.
        if [ "$before" = "$after" ] && grep -q 'context deadline exceeded' "$log"; then
          echo "fuzz $pkg $target: stopped by the Go fuzz coordinator's deadline race, no failing input"
        else
          rm -f "$log"
          exit 1
        fi
      fi
      rm -f "$log"
    done
  done
fi
echo "all tests passed"
