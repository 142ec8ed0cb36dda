#!/usr/bin/env bash
# demo.sh — the README's first command (`make demo`): start a sandbox with a
# few instances, look at the fleet, diagnose a healthy and a broken instance,
# run a command through a session, forward a port to a small HTTP server
# "on" the instance, and let the AWS CLI use ssmkit as its
# session-manager-plugin — then stop everything. Every step must succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
ssmkit=${SSMKIT:-bin/ssmkit}
state=$(mktemp -d "${TMPDIR:-/tmp}/ssmkit-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$ssmkit" sandbox down --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "ssmkit sandbox up: 2 healthy instances, one whose agent is offline, one without a role"
"$ssmkit" sandbox up --state-dir "$state" --instances 2 --instance lost:offline --instance norole:no-role
eval "$("$ssmkit" sandbox env --state-dir "$state")"
ids=$("$ssmkit" sandbox status --state-dir "$state" --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(i["id"] for i in s["instances"]))')
read -r web1 web2 lost norole <<<"$ids"

step "ssmkit ls"
"$ssmkit" ls

step "ssmkit doctor $web1 (healthy)"
"$ssmkit" doctor "$web1"

step "ssmkit doctor $lost $norole (broken: exit status 1 expected)"
if "$ssmkit" doctor "$lost" "$norole"; then
  echo "doctor found nothing wrong with broken instances" >&2
  exit 1
fi

step "ssmkit exec $web1 -- uname -sr"
"$ssmkit" exec "$web1" -- 'echo "hello from $(hostname) as $(id -un)"; uname -sr'

step "ssmkit forward $web2 0:PORT to a small HTTP server on the instance"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$state/www" && echo "served through Session Manager" > "$state/www/index.html"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$state/www" >/dev/null 2>&1 &
pids+=($!)
"$ssmkit" forward "$web2" "0:$port" --json > "$state/forward.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$state/forward.json" ] && break; sleep 0.1; done
local_addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["local_address"])' "$state/forward.json")
body=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("http://" + sys.argv[1] + "/", timeout=10).read().decode().strip())' "$local_addr")
echo "GET http://$local_addr/ → $body"
[ "$body" = "served through Session Manager" ]

step "the AWS CLI with ssmkit as its session-manager-plugin"
if command -v aws >/dev/null; then
  export PATH="$state/bin:$PATH"
  "$ssmkit" plugin install --dir "$state/bin"
  out=$(AWS_PAGER= aws ssm start-session --target "$web1" \
    --document-name AWS-StartNonInteractiveCommand \
    --parameters '{"command":["sh -c \"echo hello from the AWS CLI on $(hostname)\""],"separateOutputStream":["true"]}')
  echo "$out"
  grep -q "hello from the AWS CLI" <<<"$out"
elif [ "${SSMKIT_CI:-}" = 1 ]; then
  echo "the AWS CLI (aws) is not installed" >&2
  exit 1
else
  echo "(skipped: the AWS CLI is not installed — pip install awscli)"
fi

step "ssmkit sandbox down"
"$ssmkit" sandbox down --state-dir "$state"
echo
echo "demo passed"
