#!/usr/bin/env bash
# bnlab's `experiment ioffe2015` against scripts/ioffe2015_torch.py on the same job, side by
# side: both networks, STEPS steps of 60, an evaluation every 1,000 steps; each tool runs the two
# networks at once, one thread each (bnlab's way on two cores; PyTorch as two processes). The
# times are each run's own training-and-evaluation seconds (data in memory, no start-up), the
# slower network's; ROUNDS rounds, the order alternating. By hand only (needs torch).
set -euo pipefail
STEPS=${STEPS:-10000}
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d)
bnlab() {
  rm -rf "$tmp/b"
  target/release/bnlab experiment ioffe2015 --steps "$STEPS" --out "$tmp/b" \
    | sed -n 's/.* steps in \([0-9.]*\) s.*/\1/p' | sort -n | tail -1
}
torch() {
  python3 scripts/ioffe2015_torch.py --net plain --steps "$STEPS" > "$tmp/p.json" &
  python3 scripts/ioffe2015_torch.py --net bn --steps "$STEPS" > "$tmp/n.json" &
  wait
  python3 -c "import json,sys; print(max(json.load(open(f))['seconds'] for f in sys.argv[1:]))" "$tmp/p.json" "$tmp/n.json"
}
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then b=$(bnlab); t=$(torch); else t=$(torch); b=$(bnlab); fi
  echo "round $r: bnlab $b s, PyTorch $t s, ratio $(python3 -c "print(round($t / $b, 2))")"
done
rm -rf "$tmp"
