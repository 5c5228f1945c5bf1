"""`bnlab summary --model FILE` against torchinfo 1.8's own table (a check run by hand; needs
torch and torchinfo).

usage: python3 scripts/summary_check.py MODEL.txt [INPUT_SHAPE, default 1,1,28,28]
Builds the PyTorch module the file describes (scripts/model_file_check.py), prints
`torchinfo.summary(model, input_size)` and bnlab's table, and says whether they are the same
text.
"""
import os, subprocess, sys

import torchinfo

sys.path.insert(0, os.path.dirname(__file__))
from model_file_check import parse


def main():
    path = sys.argv[1]
    shape = sys.argv[2] if len(sys.argv) > 2 else "1,1,28,28"
    text = open(path).read()
    model, _ = parse([l for l in text.splitlines() if l.strip()], 0)
    theirs = str(torchinfo.summary(model, tuple(int(d) for d in shape.split(",")), verbose=0))
    # torchinfo 1.8 on Python 3.11+ prints its unit enum as "Units.MEGABYTES" where older
    # Pythons (and the course's output) give "M"
    theirs = theirs.replace("(Units.MEGABYTES)", "(M)").replace("(Units.GIGABYTES)", "(G)")
    root = os.path.join(os.path.dirname(__file__), "..")
    ours = subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--manifest-path", os.path.join(root, "Cargo.toml"), "--",
         "summary", "--model", path, "--input", shape],
        check=True, capture_output=True, text=True).stdout
    same = ours.rstrip("\n") == theirs.rstrip("\n")
    print(f"{path}: {'the same table' if same else 'DIFFERENT'}")
    if not same:
        import difflib
        print("\n".join(difflib.unified_diff(theirs.splitlines(), ours.splitlines(), "torchinfo", "bnlab", lineterm="")))


if __name__ == "__main__":
    main()
