"""A model file trained by bnlab loads strictly into the same PyTorch module (a check run by
hand; needs torch, numpy, safetensors; the tests check names and bits with the golden files).

usage: python3 scripts/model_file_check.py MODEL.txt WEIGHTS.safetensors
1. builds the PyTorch module the file describes: each `(name): Class(args)` line is the call
   `nn.Class(args)` (PyTorch prints its modules as their constructor calls), each container a
   module whose forward runs its children in order, flattening before a Linear that meets
   images, as bnlab does;
2. checks that `print(module)` gives the file's text back (PyTorch 2.15 prints BatchNorm's
   `bias=True`; an older PyTorch differs only there);
3. loads the weights with `load_state_dict(strict=True)` and prints the MNIST test accuracy,
   to compare with `bnlab eval --model MODEL.txt --weights WEIGHTS --json` (within 1e-4).
"""
import gzip, inspect, os, re, sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")


class Container(nn.Module):
    """A user class holding children, run in the order printed."""

    def __init__(self, name, children):
        super().__init__()
        self._name = name
        for k, m in children:
            self.add_module(k, m)

    def _get_name(self):
        return self._name

    def forward(self, x):
        for m in self.children():
            x = run(m, x)
        return x


class Sequential(nn.Sequential):
    """nn.Sequential (the same name, state dict and printed text) whose children run through
    `run`, so that a Linear meeting images flattens them first."""

    def forward(self, x):
        for m in self:
            x = run(m, x)
        return x


def run(m, x):
    if isinstance(m, nn.Linear) and x.dim() > 2 and x.shape[-1] != m.in_features:
        x = torch.flatten(x, 1)  # the seed's inline nn.Flatten()(X)
    return m(x)


def leaf(cls, args):
    """nn.Class(args), the call PyTorch printed. A keyword this PyTorch's class does not take
    (BatchNorm's `bias`, new in 2.15) is dropped only when it has the value that means no
    change (`bias=True`)."""
    a, k = eval(f"(lambda *a, **k: (a, k))({args})")
    layer = getattr(nn, cls)
    params = inspect.signature(layer.__init__).parameters
    if "bias" in k and "bias" not in params and k["bias"] is True:
        del k["bias"]
    return layer(*a, **k)


def parse(lines, i):
    """The module whose header is lines[i]; returns (module, next line index)."""
    m = re.match(r"^(?:\((\w+)\): )?(\w+)\((.*)$", lines[i].strip())
    cls, rest = m.group(2), m.group(3)
    if rest != "":
        return leaf(cls, rest[:-1]), i + 1  # one line: Class(args)
    children, j = [], i + 1
    while lines[j].strip() != ")":
        name = re.match(r"^\s*\((\w+)\):", lines[j]).group(1)
        child, j = parse(lines, j)
        children.append((name, child))
    if cls == "Sequential":
        return Sequential(*[c for _, c in children]), j + 1
    # a class of the file's own name, so that summaries show it
    return type(cls, (Container,), {})(cls, children), j + 1


def main():
    model_path, weights = sys.argv[1], sys.argv[2]
    text = open(model_path).read()
    lines = [l for l in text.splitlines() if l.strip()]
    model, _ = parse(lines, 0)
    printed = str(model)
    print("print(model) gives the file back:", printed.strip() == text.strip())
    model.load_state_dict(load_file(weights), strict=True)
    model.eval()
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = torch.from_numpy(x.astype(np.float32) / 255.0)
    with torch.no_grad():
        pred = torch.cat([run(model, x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    print(f"PyTorch test accuracy: {(pred.numpy() == y).mean():.5f}")


if __name__ == "__main__":
    main()
