#!/usr/bin/env python3
"""Two builds of bnlab, or bnlab and PyTorch, taking turns on the same machine block by block:
which is faster, and by how much, with the machine's drift cancelled.

    python3 scripts/ab_builds.py A B [--blocks 100] [--steps 20] [--eval-every 5]

A and B are commands that answer benches/step_blocks.rs's protocol: a `benches/step_blocks`
binary of each build, or PyTorch's side, "python3 scripts/torch_bench.py data/mnist --serve
--batch 256" (quoted as one argument). The same command twice is the control, which shows how
far to trust a ratio. Both start, load MNIST and wait; then each block of --steps training
steps runs on one and then on the other (the order alternating), and every --eval-every blocks
each evaluates the test set once. Only one runs at a time; the other waits on its input.

Settings reach step_blocks through the environment (MODEL, BS, WIDTH, THREADS: see
benches/step_blocks.rs) and torch_bench.py through its options (--model, --batch, --width):
give both the same setting. Run it from the repository's root (both read data/mnist).

Prints each side's median time per step and per evaluation, and the median of the per-block
ratios A/B with their quartiles (above 1: B is faster).
"""

import argparse
import shlex
import statistics
import subprocess
import sys


def start(command):
    try:
        proc = subprocess.Popen(
            shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
    except OSError as e:
        sys.exit(f"{command}: cannot run it ({e.strerror})")
    if proc.stdout.readline().strip() != "ready":
        sys.exit(f"{command}: did not start (expected 'ready' on its first line)")
    return proc


def ask(proc, command):
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    if not answer:
        sys.exit(f"a build stopped answering at {command!r}")
    return float(answer)


def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def summary(name, a, b, per):
    ratios = [x / y for x, y in zip(a, b)]
    lo, hi = quartiles(ratios)
    print(
        f"{name}: A {statistics.median(a) / per * 1e6:.1f} us, "
        f"B {statistics.median(b) / per * 1e6:.1f} us, "
        f"A/B {statistics.median(ratios):.3f} (quartiles {lo:.3f}-{hi:.3f}, {len(ratios)} pairs)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=5)
    args = parser.parse_args()
    if args.blocks < 4 or args.steps < 1 or args.eval_every < 1:
        sys.exit("--blocks must be at least 4, --steps and --eval-every at least 1")
    builds = [start(args.a), start(args.b)]
    steps = [[], []]
    evals = [[], []]
    command = f"steps {args.steps}"
    for build in builds:  # warm-up: caches, buffers, the optimizer's state
        ask(build, command)
    for block in range(args.blocks):
        turn = [0, 1] if block % 2 == 0 else [1, 0]
        for i in turn:
            steps[i].append(ask(builds[i], command))
        if block % args.eval_every == 0:
            for i in turn:
                evals[i].append(ask(builds[i], "eval"))
    for build in builds:
        build.stdin.close()
        build.wait()
    summary("training step", steps[0], steps[1], args.steps)
    if len(evals[0]) >= 2:
        summary("evaluation", evals[0], evals[1], 1)


if __name__ == "__main__":
    main()
