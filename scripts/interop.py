"""Weights move both ways between bnlab and PyTorch (a check run by hand; needs torch, numpy,
safetensors; the tests use the golden files instead).

usage: python3 scripts/interop.py BNLAB_WEIGHTS.safetensors OUT_TORCH_WEIGHTS.safetensors
1. loads bnlab's weights into the seed's BNModel with load_state_dict (strict) and prints the
   test loss and accuracy PyTorch computes (compare with `bnlab eval --weights ... --json`);
2. trains the seed's BNModel in PyTorch for one epoch, saves it with safetensors, and prints its
   test accuracy (compare with `bnlab eval --weights OUT_TORCH_WEIGHTS.safetensors --json`).
"""
import json, os, sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from mnist_idx import read_split

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")


def load(split):
    x, y = read_split(DATA, split)
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


class BNModel(nn.Module):  # the seed's model, as the chapter writes it
    def __init__(self):
        super().__init__()
        self.b1 = nn.Sequential(nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU())
        self.b2 = nn.Sequential(nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU())
        self.b3 = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.output = nn.Linear(64, 10)

    def forward(self, X):
        return self.output(self.b3(self.b2(self.b1(nn.Flatten()(X)))))


def evaluate(model, x, y, batch=256):
    model.eval()
    loss_fn, losses, correct = nn.CrossEntropyLoss(), [], 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            losses.append(loss_fn(out, y[i:i + batch]).item())
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return sum(losses) / len(losses), correct / len(x)


def main():
    bnlab_weights, torch_out = sys.argv[1], sys.argv[2]
    xte, yte = load("t10k")
    model = BNModel()
    model.load_state_dict(load_file(bnlab_weights))  # strict: every key, shape and dtype
    loss, acc = evaluate(model, xte, yte)
    print(json.dumps({"bnlab_weights_in_pytorch": {"loss": loss, "accuracy": acc, "samples": len(xte)}}))

    torch.manual_seed(0)
    xtr, ytr = load("train")
    model = BNModel()
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()
    model.train()
    for i in range(0, len(xtr), 256):
        loss = loss_fn(model(xtr[i:i + 256]), ytr[i:i + 256])
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, torch_out)
    loss, acc = evaluate(model, xte, yte)
    print(json.dumps({"pytorch_weights_in_pytorch": {"loss": loss, "accuracy": acc, "samples": len(xte)}}))


if __name__ == "__main__":
    main()
