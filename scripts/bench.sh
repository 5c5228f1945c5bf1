#!/usr/bin/env bash
# bnlab and PyTorch side by side, one after the other on the same machine, as ratios.
#   scripts/bench.sh [EPOCHS]        (needs `pip install torch numpy`; takes a few minutes)
# For each setting: median seconds per training epoch and per test-set evaluation, both sides
# measured the same way (scripts/torch_bench.py mirrors `bnlab bench`), then the seed's own
# reference script (../shared/reference/seed_bn_mnist.py) for PyTorch's DataLoader figure.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
data=data/mnist
cargo build --release --quiet
bnlab=target/release/bnlab
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

printf '%-22s %12s %12s %8s %12s %12s %8s\n' setting bnlab_train torch_train ratio bnlab_eval torch_eval ratio
run() { # name, bnlab args, torch args
  local b t
  b=$($bnlab bench --json --threads 2 --epochs "$epochs" $2)
  # PyTorch with its own default thread count: torch.set_num_threads(2) made it ten times
  # slower on these machines (11.5 s per epoch instead of 1.2 s), which would flatter bnlab
  t=$(python3 scripts/torch_bench.py "$data" --epochs "$epochs" $3)
  python3 - "$1" "$b" "$t" <<'PY'
import json, sys
name, b, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
bt, tt, be, te = b["train_epoch_seconds"], t["train_epoch_seconds"], b["eval_seconds"], t["eval_seconds"]
print(f"{name:<22} {bt:12.3f} {tt:12.3f} {tt/bt:7.2f}x {be:12.4f} {te:12.4f} {te/be:7.2f}x")
PY
}
run "bn, batch 32" "--batch-size 32" "--batch 32"
run "bn, batch 256" "--batch-size 256" "--batch 256"
run "bn, batch 1024" "--batch-size 1024" "--batch 1024"
run "bn x2 wide, batch 1024" "--batch-size 1024 --width 2" "--batch 1024 --width 2"
run "bn x4 wide, batch 1024" "--batch-size 1024 --width 4" "--batch 1024 --width 4"
if [ "${CNN:-0}" = 1 ]; then
  run "cnn-bn, batch 256" "--model cnn-bn --batch-size 256" "--model cnn-bn --batch 256"
fi

echo
echo "Ten epochs of the course's fit (both sets re-evaluated each epoch), and peak memory:"
/usr/bin/time -f "bnlab train: %e s wall, %M KB peak RSS" $bnlab train --threads 2 --quiet --out /tmp/bnlab-bench-run > /dev/null
/usr/bin/time -f "PyTorch reference (slice loader): %e s wall, %M KB peak RSS" \
  python3 ../shared/reference/seed_bn_mnist.py ../shared/data/mnist --loader slice > /dev/null
/usr/bin/time -f "PyTorch reference (DataLoader): %e s wall, %M KB peak RSS" \
  python3 ../shared/reference/seed_bn_mnist.py ../shared/data/mnist > /dev/null
