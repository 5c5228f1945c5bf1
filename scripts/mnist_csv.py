"""MNIST written out as two CSV tables, the tabular row of scripts/bench.sh: a table has no zeros
to skip once standardised (bnlab's first layer then runs its dense product), unlike MNIST's
images, and this one is big enough to time (60,000 + 10,000 rows of 784 features).

usage: python3 scripts/mnist_csv.py DATA_DIR OUT_DIR [--rows N]
Writes OUT_DIR/mnist_train.csv and OUT_DIR/mnist_test.csv: a header `label,px0,...,px783`, then
one row per image in the IDX files' order, the label first and the pixels as integers 0-255
(the same bytes as the images: deterministic, nothing drawn). --rows N keeps the first N rows of
each split (for a quick check). Train on them with
`bnlab train --dataset csv --train-csv OUT_DIR/mnist_train.csv --test-csv OUT_DIR/mnist_test.csv
--target label`, or time them with `bnlab bench --train-csv ... --test-csv ... --target label`.
Needs numpy (never run by the tests).
"""
import argparse, os

import numpy as np

from mnist_idx import read_split


def write(data_dir, split, path, rows):
    x, y = read_split(data_dir, split)
    x, y = x[:rows], y[:rows]
    table = np.concatenate([y[:, None], x.reshape(len(x), -1)], axis=1).astype(np.int64)
    header = ",".join(["label"] + [f"px{i}" for i in range(x.shape[1] * x.shape[2])])
    tmp = path + ".part"
    np.savetxt(tmp, table, fmt="%d", delimiter=",", header=header, comments="")
    os.replace(tmp, path)  # never a half-written table under the final name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--rows", type=int, default=None)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    for split, name in [("train", "mnist_train.csv"), ("t10k", "mnist_test.csv")]:
        write(a.data_dir, split, os.path.join(a.out_dir, name), a.rows)
        print(os.path.join(a.out_dir, name))


if __name__ == "__main__":
    main()
