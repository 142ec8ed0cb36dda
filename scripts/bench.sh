#!/usr/bin/env bash
# bench.sh — ssmkit's performance targets, each printed as a ratio against a
# baseline measured in the same run (never a timed assertion in a test).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-3}

echo "== wire: frame encode/decode (ns/op, allocs/op)"
go test -run '^$' -bench 'Encode|Decode' -benchmem -count 1 ./pkg/protocol/wire/

echo
echo "== datachannel vs raw websocket on loopback (target: ratio >= 0.40)"
go test -run '^$' -bench 'ThroughputVsRaw' -benchtime 1x -count "$count" ./pkg/protocol/datachannel/ | tee /tmp/ssmkit-bench.$$
awk '/ThroughputVsRaw/ { for (i = 1; i <= NF; i++) if ($(i+1) == "ratio") { sum[$1] += $i; n[$1]++ } }
     END { for (k in sum) printf "%s mean ratio %.2f over %d runs\n", k, sum[k]/n[k], n[k] }' /tmp/ssmkit-bench.$$
rm -f /tmp/ssmkit-bench.$$

echo
echo "== datachannel memory for a 1 GiB transfer (target: flat, bounded buffers)"
go test -run '^$' -bench 'Memory1GiB' -benchtime 1x ./pkg/protocol/datachannel/

echo
echo "== doctor across accounts in the sandbox (targets: 10 accounts x 1,000 instances in < 60 s, < 1,000 API calls)"
echo "   brief run here: ${SSMKIT_BENCH_ACCOUNTS:-3} accounts x ${SSMKIT_BENCH_INSTANCES:-100} instances; the full one:"
echo "   go test -run '^\$' -bench FleetAccounts -benchtime 1x -timeout 60m ./pkg/doctor/"
SSMKIT_BENCH_ACCOUNTS=${SSMKIT_BENCH_ACCOUNTS:-3} SSMKIT_BENCH_INSTANCES=${SSMKIT_BENCH_INSTANCES:-100} \
  go test -run '^$' -bench 'FleetAccounts' -benchtime 1x -timeout 30m ./pkg/doctor/ | grep -E '^(fleet:|Benchmark|ok|FAIL)'

echo
echo "== end to end, briefly (make bench-e2e for the full table: 1 GiB transfers, medians of 3)"
scripts/bench-e2e.sh -size 128MiB -paced-size 1MiB -runs 1 -echo 1000 -starts 2
