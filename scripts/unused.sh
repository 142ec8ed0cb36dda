#!/usr/bin/env bash
# unused.sh — what staticcheck and deadcode report, with pinned versions fetched through the Go
# module proxy (`go run pkg@version`: neither becomes a dependency of ssmkit).
#
#   scripts/unused.sh          staticcheck ./... and deadcode -test ./... (code that neither main
#                              nor any test reaches); exits 1 on any finding
#   scripts/unused.sh --main   also list code that only tests reach (deadcode without -test):
#                              a report to read (test seams such as iostreams.Test belong there)
#
# Not part of `make test`: staticcheck alone takes 2 CPU-minutes on the 2-core machine. Run it
# (`make unused`) before landing a change that removes or renames code.
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
