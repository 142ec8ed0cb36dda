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

# A missing tool (moto, terraform, the AWS CLI) skips the tests that need it on a developer's
# machine, with a warning here; with SSMKIT_CI=1 (.ci/run) it is an error instead.
if [[ "${SSMKIT_CI:-}" == 1 ]]; then
  scripts/check-tools.sh >/dev/null
elif ! scripts/check-tools.sh >/dev/null 2>&1; then
  echo "test.sh: some tools are missing, so the tests that need them will skip:" >&2
  scripts/check-tools.sh 2>&1 >/dev/null | sed 's/^/  /' >&2 || true
fi

# One moto fork server for the whole run (internal/testutil/motoserver/forkserver.py): every
# test's private moto is a fork of one warm moto process instead of a new Python process that
# imports moto and builds each service on its first request — seconds of CPU per test, dozens
# of tests. Started only where moto is importable (without it the tests skip, or fail in CI).
# A developer's SSMKIT_MOTO_FORKSERVER is kept; set it to empty to start moto per test.
forkserver_dir=
stop_forkserver() {
  if [[ -n "$forkserver_dir" ]]; then
    if [[ -s "$forkserver_dir/pid" ]]; then
      kill -- -"$(cat "$forkserver_dir/pid")" 2>/dev/null || true
    fi
    rm -rf "$forkserver_dir"
  fi
}
trap stop_forkserver EXIT
if [[ -z "${SSMKIT_MOTO_FORKSERVER+set}" ]]; then
  python="${SSMKIT_PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)}"
  if [[ -n "$python" ]] && "$python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("moto", "werkzeug", "flask")))' 2>/dev/null; then
    forkserver_dir=$(mktemp -d)
    # setsid: its own process group, so the EXIT trap stops it and every child it forked.
    setsid "$python" internal/testutil/motoserver/forkserver.py "$forkserver_dir/moto.sock" \
      >"$forkserver_dir/log" 2>&1 </dev/null &
    echo $! >"$forkserver_dir/pid"
    export SSMKIT_MOTO_FORKSERVER="$forkserver_dir/moto.sock"
  fi
fi

# -p 2: two test binaries at a time on a 2-core machine.
#
# The longest packages are named first: go test builds and runs packages in the order they are
# listed (./... adds the rest, each once). Listed alphabetically, test/ (Terraform applies, the
# demo: mostly waiting on terraform and moto) started last and its whole run was a tail after
# everything else had finished; first, it overlaps with the rest.
slow=(./test/ ./pkg/sandbox/ ./pkg/doctor/ ./pkg/protocol/datachannel/ ./pkg/sandbox/ssmapi/)
go test -race -count=1 -p 2 -timeout 25m "${slow[@]}" ./... "$@"

# TestCopy256MiB moves 512 MiB through the sandbox; the race detector makes
# that slow, so it skips itself under -race and runs here without it.
go test -count=1 -run '^TestCopy256MiB$' ./pkg/cmd/cp/
