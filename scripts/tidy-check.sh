#!/usr/bin/env bash
# tidy-check.sh — fail when `go mod tidy` would change go.mod or go.sum.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! go mod tidy -diff; then
  echo "go mod tidy would change go.mod/go.sum: run 'go mod tidy' and commit" >&2
  exit 1
fi
