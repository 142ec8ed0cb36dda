#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it: `go test -race ./...`.
#
# Tests that need AWS start their own private moto server (and sandbox) and
# stop it when they end: moto's state is global per server, so tests that
# create named resources (the preferences document, a log group…) must not
# share one. Set SSMKIT_MOTO_URL to point the moto-only unit tests at a
# running server instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! { command -v python3 >/dev/null 2>&1 && python3 -c 'import moto' 2>/dev/null; }; then
  echo "moto is not installed: tests that need it will skip (pip install 'moto[server]')" >&2
fi

# -p 2: two test binaries at a time on a 2-core machine.
go test -race -count=1 -p 2 -timeout 25m ./... "$@"
