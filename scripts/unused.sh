#!/usr/bin/env bash
# unused.sh — what staticcheck and deadcode report, with pinned versions fetched through the Go
# module proxy (`go run pkg@version`: neither becomes a dependency of ssmkit).
#
#   scripts/unused.sh          staticcheck ./... and deadcode -test ./... (code that neither main
#                              nor any test reaches); exits 1 on any finding
#   scripts/unused.sh --main   also list code that only tests reach (deadcode without -test):
#                              a report to read (test seams such as iostreams.Test belong there)
#
# Part of `make test` (so CI): about 1 minute of wall time on the 2-core machine with a warm
# build cache (80 s of CPU), a little more on a cold one. The test suite itself went from ~25 to
# ~9 minutes, which made room for it.
set -uo pipefail
cd "$(dirname "$0")/.."

readonly STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
readonly DEADCODE=golang.org/x/tools/cmd/deadcode@v0.52.0

status=0
echo "== staticcheck ($STATICCHECK)"
go run "$STATICCHECK" ./... || status=1
echo "== deadcode -test ($DEADCODE): unreachable from main and from every test"
out=$(go run "$DEADCODE" -test ./...) || status=1
if [[ -n "$out" ]]; then
  echo "$out"
  status=1
fi
if [[ "${1:-}" == "--main" ]]; then
  echo "== deadcode ($DEADCODE): reached only by tests (a report, not a failure)"
  go run "$DEADCODE" ./... || status=1
fi
exit "$status"
