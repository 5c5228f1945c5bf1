"""MNIST's IDX files read with numpy, for the scripts beside this one (never run by the tests).

read_idx(path): the array in one IDX file (gzipped or not), uint8, in the file's dimensions.
read_split(data_dir, split): (images (N, 28, 28), labels (N,)) of "train" or "t10k".
"""
import gzip, os

import numpy as np


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_split(data_dir, split):
    x = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    return x, y
