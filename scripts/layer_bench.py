"""Each new layer's cost in one training epoch, bnlab against PyTorch (a benchmark run by hand;
needs torch).

usage: python3 scripts/layer_bench.py [--epochs 2] [--rounds 2]
For each layer, the seed's MLP (784-256-128-64-10, batch 256, Adam) with that layer in every
block in place of BatchNorm1d -> ReLU's ReLU (an activation) or BatchNorm1d (a normalisation),
and the CNN (cnn-bn) with AvgPool2d in place of MaxPool2d. Runs `bnlab bench --model FILE` and
`scripts/torch_bench.py --model-file FILE` alternately, two threads each, and prints the median
seconds per training epoch and PyTorch / bnlab (above 1: bnlab is faster).
"""
import json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data", "mnist")


def mlp(act="ReLU()", norm="BatchNorm1d({o}, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"):
    dims = [784, 256, 128, 64]
    lines = ["Variant("]
    for k, (i, o) in enumerate(zip(dims, dims[1:])):
        lines += [f"  (b{k + 1}): Sequential(", f"    (0): Linear(in_features={i}, out_features={o}, bias=True)",
                  f"    (1): {norm.format(o=o)}", f"    (2): {act}", "  )"]
    lines += ["  (output): Linear(in_features=64, out_features=10, bias=True)", ")"]
    return "\n".join(lines) + "\n"


VARIANTS = {
    "ReLU + BatchNorm1d (the seed)": mlp(),
    "Sigmoid": mlp("Sigmoid()"),
    "Tanh": mlp("Tanh()"),
    "LeakyReLU": mlp("LeakyReLU(negative_slope=0.01)"),
    "GELU": mlp("GELU(approximate='none')"),
    "GELU tanh": mlp("GELU(approximate='tanh')"),
    "Identity": mlp(norm="Identity()"),
    "LayerNorm": mlp(norm="LayerNorm(({o},), eps=1e-05, elementwise_affine=True, bias=True)"),
    "GroupNorm": mlp(norm="GroupNorm(8, {o}, eps=1e-05, affine=True, bias=True)"),
}


def cnn_avgpool():
    text = open(os.path.join(ROOT, "examples", "models", "cnn-bn.txt")).read()
    return text.replace("MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
                        "AvgPool2d(kernel_size=2, stride=2, padding=0)")


def seconds(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["train_epoch_seconds"]


def main():
    epochs = sys.argv[sys.argv.index("--epochs") + 1] if "--epochs" in sys.argv else "2"
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 2
    bnlab = os.path.join(ROOT, "target", "release", "bnlab")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(ROOT, "Cargo.toml")], check=True)
    variants = dict(VARIANTS, **{"AvgPool2d (cnn-bn)": cnn_avgpool()})
    print(f"{'layer':<32}{'bnlab s':>10}{'PyTorch s':>11}{'PyTorch/bnlab':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in variants.items():
            path = os.path.join(tmp, "model.txt")
            open(path, "w").write(text)
            ours, theirs = [], []
            for r in range(rounds):
                b = lambda: ours.append(seconds([bnlab, "bench", "--json", "--threads", "2", "--epochs", epochs,
                                                 "--data-dir", DATA, "--model", path]))
                t = lambda: theirs.append(seconds([sys.executable, os.path.join(ROOT, "scripts", "torch_bench.py"), DATA,
                                                   "--threads", "2", "--epochs", epochs, "--model-file", path]))
                for f in ((b, t) if r % 2 == 0 else (t, b)):
                    f()
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"{name:<32}{o:>10.3f}{t:>11.3f}{t / o:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
