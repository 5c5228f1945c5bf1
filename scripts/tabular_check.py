"""A real table trains to PyTorch's accuracy (a check run by hand; needs scikit-learn for the
data, and torch for the PyTorch side).

usage: python3 scripts/tabular_check.py OUT_DIR [--bnlab-only] [--seeds N]
1. writes scikit-learn's breast cancer table (569 rows, 30 features, 0/1 target) as
   OUT_DIR/train.csv and OUT_DIR/test.csv, split 80/20 with a fixed seed;
2. trains `bnlab train --dataset csv --mode binary` with OUT_DIR/model.txt (30-64-32-1 with
   BatchNorm1d), Adam lr 0.001, batch 32, 30 epochs, and prints its test accuracy;
3. trains the same module in PyTorch (built from the same text by scripts/model_file_check.py),
   on the same split with the same standardisation (the training rows' mean and population
   std), and prints its test accuracy: the two should agree within 1%.
With 114 test rows one row is 0.88%, so one run of each says little: `--seeds N` (default 5)
trains each side N times (bnlab's --seed, PyTorch's manual_seed) and prints the means.
"""
import json, os, subprocess, sys

import numpy as np
from sklearn.datasets import load_breast_cancer

MODEL = """BreastCancerMLP(
  (b1): Sequential(
    (0): Linear(in_features=30, out_features=64, bias=True)
    (1): BatchNorm1d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU()
  )
  (b2): Sequential(
    (0): Linear(in_features=64, out_features=32, bias=True)
    (1): BatchNorm1d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU()
  )
  (output): Linear(in_features=32, out_features=1, bias=True)
)
"""
EPOCHS, BATCH, LR = 30, 32, 1e-3


def write(path, x, y, names):
    with open(path, "w") as f:
        f.write(",".join(names + ["target"]) + "\n")
        for row, t in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{int(t)}\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    order = np.random.default_rng(0).permutation(len(data.target))
    test, train = order[:114], order[114:]
    write(os.path.join(out, "train.csv"), data.data[train], data.target[train], names)
    write(os.path.join(out, "test.csv"), data.data[test], data.target[test], names)
    open(os.path.join(out, "model.txt"), "w").write(MODEL)
    seeds = int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 5
    root = os.path.join(os.path.dirname(__file__), "..")
    ours = []
    for seed in range(seeds):
        run = os.path.join(out, f"run-{seed}")
        subprocess.run(["cargo", "run", "--release", "--quiet", "--manifest-path", os.path.join(root, "Cargo.toml"), "--",
                        "train", "--dataset", "csv", "--train-csv", os.path.join(out, "train.csv"),
                        "--test-csv", os.path.join(out, "test.csv"), "--target", "target", "--mode", "binary",
                        "--model", os.path.join(out, "model.txt"), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
                        "--lr", str(LR), "--seed", str(seed), "--out", run, "--overwrite", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL)
        history = json.load(open(os.path.join(run, "history.json")))
        ours.append(history["epochs"][-1]["val_accuracy"])
    print(f"bnlab test accuracy over {seeds} seeds: mean {np.mean(ours):.4f} ({', '.join(f'{a:.4f}' for a in ours)})")
    if "--bnlab-only" in sys.argv:
        return
    import torch
    sys.path.insert(0, os.path.dirname(__file__))
    from model_file_check import parse, run as forward
    xtr, xte = data.data[train], data.data[test]
    mean, std = xtr.mean(0), xtr.std(0)
    std[std == 0] = 1
    xtr = torch.tensor((xtr - mean) / std, dtype=torch.float32)
    xte = torch.tensor((xte - mean) / std, dtype=torch.float32)
    ytr = torch.tensor(data.target[train], dtype=torch.float32)
    theirs = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model, _ = parse([l for l in MODEL.splitlines() if l.strip()], 0)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(EPOCHS):
            model.train()
            perm = torch.randperm(len(ytr))
            for i in range(0, len(ytr), BATCH):
                idx = perm[i:i + BATCH]
                opt.zero_grad()
                loss_fn(forward(model, xtr[idx]).squeeze(1), ytr[idx]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            pred = (forward(model, xte).squeeze(1) > 0).numpy()
        theirs.append((pred == data.target[test]).mean())
    print(f"PyTorch test accuracy over {seeds} seeds: mean {np.mean(theirs):.4f} ({', '.join(f'{a:.4f}' for a in theirs)})")
    print(f"difference of the means: {abs(np.mean(ours) - np.mean(theirs)):.4f}")


if __name__ == "__main__":
    main()
