#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it: one moto server for the run
# (started here, stopped on exit), then `go test -race ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."

state=$(mktemp -d "${TMPDIR:-/tmp}/ssmkit-test.XXXXXX")
cleanup() { scripts/moto.sh stop "$state/moto" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

if command -v python3 >/dev/null 2>&1 && python3 -c 'import moto' 2>/dev/null; then
  eval "$(scripts/moto.sh start "$state/moto")"
  echo "moto: $SSMKIT_MOTO_URL"
else
  echo "moto is not installed: tests that need it will start their own or skip" >&2
fi

# -p 2: two test binaries at a time on a 2-core machine keeps timing-sensitive
# tests honest; the long transfers are inside the race budget (see README).
go test -race -count=1 -p 2 -timeout 25m ./... "$@"
