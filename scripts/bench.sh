#!/usr/bin/env bash
# bnlab and PyTorch side by side, one after the other on the same machine, as ratios.
#   scripts/bench.sh [EPOCHS]        (needs `pip install torch numpy`; takes several minutes)
#   ROUNDS=R (default 3): each setting is measured R times, bnlab then PyTorch in each round;
#   CNN=1 adds the cnn-bn preset, against PyTorch's default (NCHW) and channels_last (one round
#   each by default, CNN_ROUNDS=R for more: about 1.5 minutes per round and row);
#   F32=0 leaves out the float32 rows and the ten-epoch fits (to time the bfloat16 rows alone);
#   BF16=0 leaves out the bfloat16 rows, which run by default on a CPU with AVX512-BF16 or AMX:
#   `bnlab bench --precision bf16` against PyTorch's torch.autocast("cpu", dtype=torch.bfloat16)
#   (and, for cnn-bn with CNN=1, autocast + channels_last, PyTorch's fastest CNN setting).
# The evaluation columns are the test set at each row's batch size: the 4x-wide row's is the
# 4x-wide model's evaluation at batch 1024.
# The "csv table" row is MNIST written out as a CSV table (scripts/mnist_csv.py, made once into
# ${TMPDIR:-/tmp}/bnlab-bench-csv): a table has no zeros to skip once standardised, so it times
# bnlab's dense first layer, which MNIST's images never use.
# For each setting: median seconds per training epoch and per test-set evaluation, both sides
# measured the same way (scripts/torch_bench.py mirrors `bnlab bench`). The speed of these
# machines drifts by 10-30% within minutes, so a ratio is taken within each round (the two
# runs seconds apart) and the table gives the median ratio over the rounds with its range.
# Then ten epochs of the course's fit: `bnlab train` against ../shared/reference/seed_bn_mnist.py.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
rounds=${ROUNDS:-3}
cnn_rounds=${CNN_ROUNDS:-1}
data=data/mnist
cargo build --release --quiet
bnlab=target/release/bnlab

printf '%-22s %12s %12s %22s %12s %12s %22s\n' setting bnlab_train torch_train "ratio (range)" \
  bnlab_eval torch_eval "ratio (range)"
run() { # name, rounds, bnlab args, torch args
  local pairs=() b t
  for _ in $(seq "$2"); do
    b=$($bnlab bench --json --threads 2 --epochs "$epochs" $3)
    # PyTorch with its own default thread count: torch.set_num_threads(2) made it ten times
    # slower on these machines (11.5 s per epoch instead of 1.2 s), which would flatter bnlab
    t=$(python3 scripts/torch_bench.py "$data" --epochs "$epochs" $4)
    pairs+=("$b" "$t")
  done
  python3 - "$1" "${pairs[@]}" <<'PY'
import json, statistics as st, sys
name, runs = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
bn, pt = runs[0::2], runs[1::2]
def col(key):
    b = [r[key] for r in bn]
    t = [r[key] for r in pt]
    ratios = [y / x for x, y in zip(b, t)]
    rng = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "one round"
    return f"{st.median(b):12.4f} {st.median(t):12.4f} {st.median(ratios):7.2f}x ({rng:>11})"
print(f"{name:<22} {col('train_epoch_seconds')} {col('eval_seconds')}")
PY
}
csv_dir=${TMPDIR:-/tmp}/bnlab-bench-csv
if [ ! -f "$csv_dir/mnist_test.csv" ]; then
  python3 scripts/mnist_csv.py "$data" "$csv_dir" > /dev/null
fi
csv="--train-csv $csv_dir/mnist_train.csv --test-csv $csv_dir/mnist_test.csv --target label"
if [ "${F32:-1}" = 1 ]; then
  run "bn, batch 32" "$rounds" "--batch-size 32" "--batch 32"
  run "bn, batch 256" "$rounds" "--batch-size 256" "--batch 256"
  run "bn, batch 1024" "$rounds" "--batch-size 1024" "--batch 1024"
  run "bn x2 wide, batch 1024" "$rounds" "--batch-size 1024 --width 2" "--batch 1024 --width 2"
  run "bn x4 wide, batch 1024" "$rounds" "--batch-size 1024 --width 4" "--batch 1024 --width 4"
  run "csv table, batch 256" "$rounds" "--batch-size 256 $csv" "--batch 256 $csv"
  if [ "${CNN:-0}" = 1 ]; then
    run "cnn-bn, batch 256" "$cnn_rounds" "--model cnn-bn --batch-size 256" "--model cnn-bn --batch 256"
    run "cnn-bn, torch NHWC" "$cnn_rounds" "--model cnn-bn --batch-size 256" \
      "--model cnn-bn --batch 256 --channels-last"
  fi
fi
if [ "${BF16:-1}" = 1 ]; then
  if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
    echo "bfloat16: bnlab --precision bf16 against PyTorch's autocast bf16"
    run "bn, batch 256, bf16" "$rounds" "--batch-size 256 --precision bf16" \
      "--batch 256 --autocast bf16"
    run "bn x4 wide b1024 bf16" "$rounds" "--batch-size 1024 --width 4 --precision bf16" \
      "--batch 1024 --width 4 --autocast bf16"
    run "csv table, bf16" "$rounds" "--batch-size 256 --precision bf16 $csv" \
      "--batch 256 --autocast bf16 $csv"
    if [ "${CNN:-0}" = 1 ]; then
      run "cnn-bn, bf16" "$cnn_rounds" "--model cnn-bn --batch-size 256 --precision bf16" \
        "--model cnn-bn --batch 256 --autocast bf16"
      run "cnn-bn bf16 torch NHWC" "$cnn_rounds" "--model cnn-bn --batch-size 256 --precision bf16" \
        "--model cnn-bn --batch 256 --autocast bf16 --channels-last"
    fi
  else
    echo "bfloat16 rows left out: this CPU has neither AVX512-BF16 nor AMX-BF16"
  fi
fi

if [ "${F32:-1}" = 1 ]; then
  echo
  echo "Ten epochs of the course's fit (both sets re-evaluated each epoch), and peak memory:"
  /usr/bin/time -f "bnlab train: %e s wall, %M KB peak RSS" $bnlab train --threads 2 --quiet --out /tmp/bnlab-bench-run --overwrite > /dev/null
  /usr/bin/time -f "PyTorch reference (slice loader): %e s wall, %M KB peak RSS" \
    python3 ../shared/reference/seed_bn_mnist.py ../shared/data/mnist --loader slice > /dev/null
  /usr/bin/time -f "PyTorch reference (DataLoader): %e s wall, %M KB peak RSS" \
    python3 ../shared/reference/seed_bn_mnist.py ../shared/data/mnist > /dev/null
fi
