#!/usr/bin/env bash
# moto.sh — run one moto server (the local AWS emulator) for a whole `go test` run.
#
#   scripts/moto.sh start <statedir>   start moto on a free loopback port in the background,
#                                      write moto.pid, moto.url and moto.log to <statedir>,
#                                      and print `export SSMKIT_MOTO_URL=<url>`
#   scripts/moto.sh stop <statedir>    stop it (its whole process group) and wait until it is gone
#
# Typical use:   eval "$(scripts/moto.sh start .state/moto)"; go test ./...; scripts/moto.sh stop .state/moto
#
# The interpreter is $SSMKIT_PYTHON, or else the real executable behind python3 (sys.executable,
# not a pyenv shim, so signals reach moto itself).
set -euo pipefail

readonly START_TIMEOUT=30 # seconds to wait for moto to answer
readonly STOP_TIMEOUT=10  # seconds to wait after SIGTERM before SIGKILL

die() { echo "moto.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop <statedir>"; }

# alive PID: true while PID exists and is not a zombie (an unreaped zombie is as good as gone).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [[ -n "$stat" && "$stat" != Z* ]]
}

# group_alive PGID: true while any non-zombie process is left in the process group.
group_alive() {
  ps -A -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

find_python() {
  if [[ -n "${SSMKIT_PYTHON:-}" ]]; then
    echo "$SSMKIT_PYTHON"
    return
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is not installed (or set SSMKIT_PYTHON)"
  python3 -c 'import sys; print(sys.executable)'
}

ping_url() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null --max-time 2 "$1/moto-api/"
  else
    "$PY" -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2)
except urllib.error.HTTPError:
    pass' "$1" 2>/dev/null
  fi
}

cmd_start() {
  local dir=$1
  mkdir -p "$dir"
  local pidfile="$dir/moto.pid" urlfile="$dir/moto.url" logfile="$dir/moto.log"

  if [[ -f "$pidfile" ]] && alive "$(cat "$pidfile")"; then
    echo "moto.sh: already running (pid $(cat "$pidfile"))" >&2
    echo "export SSMKIT_MOTO_URL=$(cat "$urlfile")"
    return
  fi

  PY=$(find_python)
  missing=$("$PY" -c 'import importlib.util
print(" ".join(m for m in ("moto", "werkzeug", "flask", "flask_cors") if importlib.util.find_spec(m) is None))') ||
    die "cannot run $PY"
  [[ -z "$missing" ]] || die "moto is not installed: $PY cannot import $missing (pip install 'moto[server]')"

  local port url pid
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"

  # setsid inside python (not the setsid tool) keeps the pid we record equal to moto's pid and
  # its process-group id, on Linux and macOS alike.
  MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$PY" -c '
import os, sys
os.setsid()
os.execv(sys.executable, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", sys.argv[1]])
' "$port" </dev/null >"$logfile" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  echo "$url" >"$urlfile"

  local deadline=$((SECONDS + START_TIMEOUT))
  until ping_url "$url"; do
    if ! alive "$pid"; then
      rm -f "$pidfile" "$urlfile"
      die "moto exited during start-up; last output:
$(tail -n 20 "$logfile")"
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$pidfile" "$urlfile"
      die "moto did not answer on $url within ${START_TIMEOUT}s; last output:
$(tail -n 20 "$logfile")"
    fi
    sleep 0.1
  done
  echo "moto.sh: moto running at $url (pid $pid, log $logfile)" >&2
  echo "export SSMKIT_MOTO_URL=$url"
}

cmd_stop() {
  local dir=$1
  local pidfile="$dir/moto.pid" urlfile="$dir/moto.url"
  if [[ ! -f "$pidfile" ]]; then
    echo "moto.sh: not running (no $pidfile)" >&2
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid in $pidfile: $pid"

  kill -TERM -- "-$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while group_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.2
      group_alive "$pid" && die "process group $pid survived SIGKILL"
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile" "$urlfile"
  echo "moto.sh: stopped moto (pid $pid)" >&2
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) usage ;;
esac
