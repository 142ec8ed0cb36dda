#!/usr/bin/env bash
# bench-e2e.sh — issue 12's end-to-end table: ssmkit through the sandbox's
# relay to an emulated agent, next to raw loopback TCP and, when
# session-manager-plugin is on PATH (or built under /tmp/peers), the
# official plugin through the AWS CLI; the official agent's rows when it is
# built under /tmp/peers and this runs as root. One table, every target
# marked met or NOT MET; each figure is a median of -runs runs (default 3)
# measured in the same run as its baseline.
#
#   scripts/bench-e2e.sh                       # the full table (several minutes)
#   scripts/bench-e2e.sh -size 128MiB -runs 1  # a quick look
#   PROFILE_DIR=/tmp/prof scripts/bench-e2e.sh # CPU and heap profiles of every
#                                              # client, the relay and the agent
#
# Run it on a quiet machine: `flock /tmp/ssmkit-heavy.lock make bench-e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/ssmkit" ./cmd/ssmkit
go build -o "$tmp/bench-e2e" ./scripts/bench-e2e
args=()
if [ -n "${PROFILE_DIR:-}" ]; then
  args+=(-profile-dir "$PROFILE_DIR")
fi
"$tmp/bench-e2e" -ssmkit "$tmp/ssmkit" "${args[@]}" "$@"
