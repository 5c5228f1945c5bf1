#!/usr/bin/env bash
# The cost of `bnlab train --stats` (default --stats-every 50): ROUNDS pairs of 3-epoch runs of
# the seed's model, the order alternating, each run's median epoch time (training and both
# evaluations, from history.json); prints each pair's ratio stats/plain and their median.
set -euo pipefail
ROUNDS=${ROUNDS:-8}
BIN=${BIN:-target/release/bnlab}
tmp=$(mktemp -d)
epoch() { python3 -c "import json,sys; s=sorted(e['seconds'] for e in json.load(open(sys.argv[1]))['epochs']); print(s[len(s)//2])" "$1/history.json"; }
run() { rm -rf "$tmp/$1"; "$BIN" train --epochs 3 --quiet --threads 2 --out "$tmp/$1" ${2:-} >/dev/null; epoch "$tmp/$1"; }
ratios=()
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then p=$(run plain); s=$(run stats --stats); else s=$(run stats --stats); p=$(run plain); fi
  ratio=$(python3 -c "print(round($s / $p, 4))")
  echo "round $r: plain $p s, --stats $s s, ratio $ratio"
  ratios+=("$ratio")
done
python3 -c "import statistics,sys; print('median ratio', statistics.median(map(float, sys.argv[1:])))" "${ratios[@]}"
rm -rf "$tmp"
