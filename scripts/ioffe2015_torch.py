"""PyTorch's side of `bnlab experiment ioffe2015`, for BENCHMARKS.md: the same network, the
same training and the same evaluations (every EVERY steps, the test accuracy and the
percentiles of the input to sigmoid unit 0 of the last hidden layer, in eval mode).

    python3 scripts/ioffe2015_torch.py --net bn --steps 10000 --threads 1

By hand only (needs torch); never in CI or tests. Prints one JSON line: the net, steps,
seconds of the whole run (training and evaluations, data already in memory), final accuracy.
"""
import argparse, gzip, json, time
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--net", choices=["bn", "plain"], required=True)
p.add_argument("--steps", type=int, default=50_000)
p.add_argument("--every", type=int, default=1_000)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--data", default="data/mnist")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def idx(name, offset):
    with gzip.open(f"{a.data}/{name}") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


x = torch.tensor(idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0, dtype=torch.float32)
y = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
xt = torch.tensor(idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0, dtype=torch.float32)
yt = torch.tensor(idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))

layers, width = [], 784
for _ in range(3):
    layers.append(torch.nn.Linear(width, 100))
    if a.net == "bn":
        layers.append(torch.nn.BatchNorm1d(100))
    layers.append(torch.nn.Sigmoid())
    width = 100
layers.append(torch.nn.Linear(100, 10))
model = torch.nn.Sequential(*layers)
for m in model:
    if isinstance(m, torch.nn.Linear):
        torch.nn.init.normal_(m.weight, 0.0, 0.01)
        torch.nn.init.zeros_(m.bias)
sigmoid = [m for m in model if isinstance(m, torch.nn.Sigmoid)][-1]
seen = []
sigmoid.register_forward_hook(lambda m, i, o: seen.append(i[0][:, 0].detach().clone()))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()

start = time.perf_counter()
step, curve = 0, []
while step < a.steps:
    perm = torch.randperm(60_000)
    for i in range(0, 60_000 - 59, 60):
        if step == a.steps:
            break
        model.train()
        idx_ = perm[i : i + 60]
        loss = loss_fn(model(x[idx_]), y[idx_])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % a.every == 0:
            model.eval()
            seen.clear()
            with torch.no_grad():
                correct = sum((model(xt[j : j + 1000]).argmax(1) == yt[j : j + 1000]).sum().item() for j in range(0, 10_000, 1000))
            q = torch.quantile(torch.cat(seen), torch.tensor([0.15, 0.5, 0.85])).tolist()
            curve.append((step, correct / 10_000, *q))
seconds = time.perf_counter() - start
print(json.dumps({"net": a.net, "steps": a.steps, "seconds": round(seconds, 3), "final_accuracy": curve[-1][1]}))
