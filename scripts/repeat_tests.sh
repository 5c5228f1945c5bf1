#!/usr/bin/env bash
# The test suite N times in a row, optionally with the cores kept busy by other processes, to
# check that no test depends on the machine's speed (project issue 11):
#   scripts/repeat_tests.sh 20        # 20 runs on an idle machine
#   LOAD=4 scripts/repeat_tests.sh 20 # the same with 4 busy loops (about 3x slower on 2 cores)
# Prints one line per run (ok or FAIL, seconds) and a total; a failing run's log is kept in
# /tmp/bnlab-repeat-N.log. Exits non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo test --release --no-run --quiet || exit 1
spinners=()
for _ in $(seq 1 "${LOAD:-0}"); do
  (while :; do :; done) &
  spinners+=($!)
done
trap 'kill "${spinners[@]}" 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$runs"); do
  t0=$(date +%s)
  if cargo test --release --quiet > "/tmp/bnlab-repeat-$i.log" 2>&1; then
    echo "run $i: ok $(( $(date +%s) - t0 )) s"
    rm -f "/tmp/bnlab-repeat-$i.log"
  else
    echo "run $i: FAIL $(( $(date +%s) - t0 )) s (log: /tmp/bnlab-repeat-$i.log)"
    failed=$((failed + 1))
  fi
done
echo "$((runs - failed)) of $runs runs passed (LOAD=${LOAD:-0})"
[ "$failed" = 0 ]
