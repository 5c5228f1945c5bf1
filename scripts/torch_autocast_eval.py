"""`bnlab eval --precision bf16` against PyTorch's autocast on the same weights: issue 24's
"within 0.002" check, run by hand (never by the tests). Needs torch, numpy and safetensors.

usage: python3 scripts/torch_autocast_eval.py WEIGHTS [--model bn|cnn-bn] [--data-dir DIR]
       [--batch B] [--bnlab PATH]
WEIGHTS: a bnlab run's last.safetensors (or best.safetensors), saved in float32 with PyTorch's
names. The script loads it into the course's PyTorch model (BNModel for bn, CNNModel for cnn-bn,
from ../shared/reference/seed_bn_mnist.py) with load_state_dict, evaluates the MNIST test set in
eval mode under torch.autocast("cpu", dtype=torch.bfloat16) (and in float32), runs
`bnlab eval --precision bf16` (and f32) on the same file, and prints the four accuracies and
whether bnlab's bf16 accuracy is within 0.002 of PyTorch's autocast one.
The two bf16 computations differ on purpose: autocast rounds every product's output to bfloat16,
bnlab keeps it in float32 (a little more accurate); both round the products' operands.
"""
import argparse, json, os, subprocess, sys

import torch
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "reference"))
from seed_bn_mnist import BNModel, CNNModel, load  # noqa: E402  (the course's models)

TOLERANCE = 0.002


def torch_accuracy(model, x, y, batch, autocast):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            if autocast:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(x[i:i + batch])
            else:
                logits = model(x[i:i + batch])
            correct += (logits.float().argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def bnlab_accuracy(bnlab, weights, model, data_dir, batch, precision):
    cmd = bnlab + ["eval", "--model", model, "--weights", weights, "--data-dir", data_dir,
                   "--batch-size", str(batch), "--precision", precision, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bnlab eval --precision {precision}: {out.stderr.strip()}")
    return json.loads(out.stdout)["accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--model", default="bn", choices=["bn", "cnn-bn"])
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data", "mnist"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--bnlab", help="the bnlab binary [default: cargo run --release]")
    a = ap.parse_args()
    bnlab = [a.bnlab] if a.bnlab else [
        "cargo", "run", "--release", "--quiet", "--manifest-path", os.path.join(ROOT, "Cargo.toml"), "--"]

    model = CNNModel() if a.model == "cnn-bn" else BNModel()
    state = load_file(a.weights)
    model.load_state_dict(state)  # strict: every name and shape must fit
    model.eval()
    x, y = load(a.data_dir, "t10k")

    rows = [
        ("PyTorch float32", torch_accuracy(model, x, y, a.batch, False)),
        ("PyTorch autocast bf16", torch_accuracy(model, x, y, a.batch, True)),
        ("bnlab eval --precision f32", bnlab_accuracy(bnlab, a.weights, a.model, a.data_dir, a.batch, "f32")),
        ("bnlab eval --precision bf16", bnlab_accuracy(bnlab, a.weights, a.model, a.data_dir, a.batch, "bf16")),
    ]
    print(f"{a.weights} ({a.model}), MNIST test set of {len(x)}, batch {a.batch}:")
    for name, acc in rows:
        print(f"  {name:<30} {acc:.4f}")
    gap = rows[3][1] - rows[1][1]
    verdict = "within" if abs(gap) <= TOLERANCE else "NOT within"
    print(f"bnlab bf16 - PyTorch autocast = {gap:+.4f}: {verdict} {TOLERANCE}")


if __name__ == "__main__":
    main()
