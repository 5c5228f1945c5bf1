#!/usr/bin/env bash
# Two bnlab binaries side by side (a change against the commit before it), as ratios:
#   scripts/bench_commits.sh OLD_BINARY NEW_BINARY [ROUNDS]
# Each round runs `bnlab bench --epochs 3` (median epoch) with the old binary, then the new,
# for each setting; the table gives each side's median over the rounds and the median of the
# per-round ratios old/new with its range (above 1: the new binary is faster).
set -euo pipefail
old=$1 new=$2 rounds=${3:-3}
data=$(cd "$(dirname "$0")/.." && pwd)/data/mnist
printf '%-18s %10s %10s %20s\n' setting old_train new_train "old/new (range)"
for setting in "--batch-size 32" "--batch-size 256" "--model cnn-bn --batch-size 256"; do
  pairs=()
  for _ in $(seq "$rounds"); do
    for bin in "$old" "$new"; do
      pairs+=("$($bin bench --json --threads 2 --epochs 3 --data-dir "$data" $setting)")
    done
  done
  python3 - "$setting" "${pairs[@]}" <<'PY'
import json, statistics as st, sys
name, runs = sys.argv[1], [json.loads(a)["train_epoch_seconds"] for a in sys.argv[2:]]
old, new = runs[0::2], runs[1::2]
r = [o / n for o, n in zip(old, new)]
print(f"{name:<18} {st.median(old):10.3f} {st.median(new):10.3f} {st.median(r):8.3f}x ({min(r):.3f}-{max(r):.3f})")
PY
done
