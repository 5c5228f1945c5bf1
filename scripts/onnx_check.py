"""Every preset's ONNX export, with and without --fold, checked by ONNX and onnxruntime (run by
hand; needs onnx, onnxruntime, numpy; torch for the logits check).

usage: python3 scripts/onnx_check.py WORK_DIR [--epochs 1]
For each preset: trains it (`bnlab train`), exports it (`bnlab export`, then with `--fold`),
runs `onnx.checker.check_model(full_check=True)`, runs onnxruntime on the 10k MNIST test images,
and compares its mean cross entropy and accuracy with `bnlab eval --json` and its logits with
PyTorch's for the same weights (the module built from the preset's model file): within 1e-4.
"""
import gzip, json, os, subprocess, sys

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data", "mnist")
PRESETS = ["bn", "plain", "dropout", "bn-dropout", "bn-after-relu", "cnn-bn", "cnn-plain"]


def bnlab(*args):
    return subprocess.run([os.path.join(ROOT, "target", "release", "bnlab"), *args], check=True,
                          capture_output=True, text=True).stdout


def test_set():
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def torch_logits(preset, weights, x):
    try:
        import torch
        from safetensors.torch import load_file
    except ImportError:
        return None
    sys.path.insert(0, os.path.dirname(__file__))
    from model_file_check import parse, run
    text = open(os.path.join(ROOT, "examples", "models", f"{preset}.txt")).read()
    model, _ = parse([l for l in text.splitlines() if l.strip()], 0)
    model.load_state_dict(load_file(weights), strict=True)
    model.eval()
    with torch.no_grad():
        return torch.cat([run(model, torch.from_numpy(x[i:i + 1000])) for i in range(0, len(x), 1000)]).numpy()


def main():
    work = sys.argv[1]
    epochs = sys.argv[sys.argv.index("--epochs") + 1] if "--epochs" in sys.argv else "1"
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(ROOT, "Cargo.toml")], check=True)
    x, y = test_set()
    ok = True
    for preset in PRESETS:
        run_dir = os.path.join(work, preset)
        bnlab("train", "--model", preset, "--epochs", epochs, "--quiet", "--out", run_dir, "--overwrite")
        weights = os.path.join(run_dir, "last.safetensors")
        ours = json.loads(bnlab("eval", "--model", preset, "--weights", weights, "--json"))
        reference = torch_logits(preset, weights, x)
        for fold in [False, True]:
            path = os.path.join(work, f"{preset}{'-folded' if fold else ''}.onnx")
            bnlab("export", "--model", preset, "--weights", weights, "--onnx", path, "--overwrite",
                  *(["--fold"] if fold else []))
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            logits = np.concatenate([session.run(["logits"], {"input": x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
            z = logits - logits.max(1, keepdims=True)
            nll = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1)))
            # bnlab's eval loss is the mean of the per-batch (256) means, as the course's
            batch_means = [nll[i:i + 256].mean() for i in range(0, len(y), 256)]
            loss, acc = float(np.mean(batch_means)), float((logits.argmax(1) == y).mean())
            diff = float(np.abs(logits - reference).max()) if reference is not None else float("nan")
            good = abs(loss - ours["loss"]) <= 1e-4 and abs(acc - ours["accuracy"]) <= 1e-4 and (
                reference is None or diff <= 1e-4)
            ok &= good
            print(f"{preset:<14} fold={str(fold):<5} check_model ok, onnxruntime loss {loss:.6f} (bnlab {ours['loss']:.6f}) "
                  f"accuracy {acc:.4f} (bnlab {ours['accuracy']:.4f}), max |logits - PyTorch's| {diff:.2e}: {'ok' if good else 'DIFFERENT'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
