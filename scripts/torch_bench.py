"""PyTorch's side of `bnlab bench`: the same measurements, taken the same way.

Median seconds per training epoch (the seed's model, Adam, cross entropy, in-memory MNIST
shuffled into batches each epoch) and per evaluation of the 10k test set, and peak memory.
usage: python3 scripts/torch_bench.py DATA_DIR [--batch B] [--epochs E] [--threads T]
       [--width W] [--model bn|cnn-bn] [--model-file FILE] [--autocast bf16] [--channels-last]
       [--train-csv FILE --test-csv FILE --target COLUMN] [--serve]
--autocast bf16: forward and loss inside torch.autocast("cpu", dtype=torch.bfloat16), as PyTorch
users write it (the backward follows the forward's types), for training and evaluation alike:
the counterpart of `bnlab bench --precision bf16`.
--channels-last: the CNN and each batch in torch.channels_last (NHWC), oneDNN's fast layout.
--train-csv: a table instead of MNIST (DATA_DIR is then unused), standardised as bnlab does
(the training rows' mean and population standard deviation), the MLP sized to its columns and
classes: the counterpart of `bnlab bench --train-csv`.
--serve: instead of timing epochs, answer `steps N` and `eval` on stdin as benches/step_blocks.rs
does, so that scripts/ab_builds.py can run PyTorch and bnlab in turns.
Prints one JSON line like `bnlab bench --json`. Needs torch and numpy (never run by the tests).
"""
import argparse, contextlib, json, os, resource, statistics, sys, time

import numpy as np
import torch
import torch.nn as nn

from mnist_idx import read_split


def load(d, split):
    x, y = read_split(d, split)
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def load_csv(path, target):
    """(features, labels) of a CSV table with a header row and numeric columns."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    t = header.index(target)
    return np.delete(table, t, axis=1), table[:, t].astype(np.int64)


def load_tables(a):
    """The training and test tables as tensors, standardised with the training rows' statistics."""
    xtr, ytr = load_csv(a.train_csv, a.target)
    xte, yte = load_csv(a.test_csv, a.target)
    mean = xtr.astype(np.float64).mean(axis=0)
    std = xtr.astype(np.float64).std(axis=0)
    std[std == 0] = 1.0
    norm = lambda x: torch.from_numpy(((x - mean) / std).astype(np.float32))
    return norm(xtr), torch.from_numpy(ytr), norm(xte), torch.from_numpy(yte)


def mlp(width, features=784, classes=10):
    dims = [features, 256 * width, 128 * width, 64 * width]
    blocks = [nn.Sequential(nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()) for i, o in zip(dims, dims[1:])]
    return nn.Sequential(nn.Flatten(), *blocks, nn.Linear(dims[-1], classes))


def cnn():
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128), nn.ReLU())
    return nn.Sequential(block(1, 32), block(32, 64), head, nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--width", type=int, default=1)
    ap.add_argument("--model", default="bn", choices=["bn", "cnn-bn"])
    ap.add_argument("--model-file", help="a model file, built as scripts/model_file_check.py does")
    ap.add_argument("--autocast", choices=["bf16"], help="forward and loss under torch.autocast")
    ap.add_argument("--channels-last", action="store_true", help="the CNN and its input in NHWC")
    ap.add_argument("--train-csv", help="a table to train on instead of MNIST")
    ap.add_argument("--test-csv", help="with --train-csv: the table to evaluate on")
    ap.add_argument("--target", help="with --train-csv: the column to predict")
    ap.add_argument("--serve", action="store_true",
                    help="answer benches/step_blocks.rs's commands on stdin (scripts/ab_builds.py)")
    a = ap.parse_args()
    if a.train_csv and not (a.test_csv and a.target):
        ap.error("--train-csv needs --test-csv and --target")
    if a.channels_last and a.model != "cnn-bn":
        ap.error("--channels-last applies to --model cnn-bn")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.train_csv:
        xtr, ytr, xte, yte = load_tables(a)
    else:
        xtr, ytr = load(a.data_dir, "train")
        xte, yte = load(a.data_dir, "t10k")
    if a.model_file:
        sys.path.insert(0, os.path.dirname(__file__))
        from model_file_check import parse
        lines = [l for l in open(a.model_file).read().splitlines() if l.strip()]
        model = parse(lines, 0)[0]
        a.model = a.model_file
    elif a.model == "cnn-bn":
        model = cnn()
    else:
        classes = int(max(ytr.max(), yte.max())) + 1
        model = mlp(a.width, xtr.shape[1] if a.train_csv else 784, classes)
    # the batches take NHWC strides as they are sliced (a copy per batch, as a DataLoader's
    # collate makes one anyway)
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    cast = lambda: (torch.autocast("cpu", dtype=torch.bfloat16) if a.autocast else contextlib.nullcontext())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def train_step(j):
        x = xtr[j].contiguous(memory_format=layout) if a.channels_last else xtr[j]
        with cast():
            loss = loss_fn(model(x), ytr[j])
        opt.zero_grad()
        loss.backward()
        opt.step()

    def evaluate():
        model.eval()
        with torch.no_grad():
            for i in range(0, len(xte), a.batch):
                x = xte[i:i + a.batch]
                x = x.contiguous(memory_format=layout) if a.channels_last else x
                with cast():
                    loss_fn(model(x), yte[i:i + a.batch]).item()

    if a.serve:
        serve(a, len(xtr), train_step, evaluate, model)
        return
    train_s, eval_s = [], []
    for _ in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        idx = torch.randperm(len(xtr))
        for i in range(0, len(xtr), a.batch):
            train_step(idx[i:i + a.batch])
        train_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate()
        eval_s.append(time.perf_counter() - t0)
    t, e = statistics.median(train_s), statistics.median(eval_s)
    print(json.dumps({"model": a.model, "batch_size": a.batch, "threads": torch.get_num_threads(), "width": a.width,
                      "precision": a.autocast or "f32", "channels_last": a.channels_last,
                      "train_epoch_seconds": t, "eval_seconds": e, "train_samples_per_second": len(xtr) / t,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "torch": torch.__version__}))


def serve(a, n, train_step, evaluate, model):
    """benches/step_blocks.rs's protocol, so that scripts/ab_builds.py can set PyTorch and bnlab
    taking turns: `steps N` (N training steps, batches of one shuffled epoch in turn) and
    `eval` (the test set), each answered with its seconds; `ready` first."""
    idx = torch.randperm(n)
    batches = [idx[i:i + a.batch] for i in range(0, n, a.batch)]
    next_batch = 0
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        t0 = time.perf_counter()
        if len(words) == 2 and words[0] == "steps" and words[1].isdigit():
            model.train()
            for _ in range(int(words[1])):
                train_step(batches[next_batch % len(batches)])
                next_batch += 1
        elif words == ["eval"]:
            evaluate()
        else:
            sys.exit(f"torch_bench.py: unknown command {line.strip()!r}: expected `steps N` or `eval`")
        print(time.perf_counter() - t0, flush=True)


if __name__ == "__main__":
    main()
