"""Datasets, read from a local mirror when one is given, else fetched with torchvision.

Set `L2L_DATA_MIRROR` to a folder in the layout of torchvision's downloads (e.g. `MNIST/raw/*.gz`)
to work offline; otherwise the files are downloaded into `data/datasets/` (git-ignored) on first use.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from l2l.paths import DATA

MIRROR_VAR = "L2L_DATA_MIRROR"
DATASETS = DATA / "datasets"

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: big-endian dims after a magic number), optionally gzipped."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4")
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(tuple(int(d) for d in dims))


def _mnist_raw_dir() -> Path:
    """The folder holding MNIST's four raw files: the mirror's, else a torchvision download."""
    mirror = os.environ.get(MIRROR_VAR)
    if mirror:
        raw = Path(mirror) / "MNIST" / "raw"
        if all((raw / f).exists() for split in MNIST_FILES.values() for f in split[:2]):
            return raw
    try:
        from torchvision.datasets import MNIST

        MNIST(DATASETS, train=True, download=True)
        MNIST(DATASETS, train=False, download=True)
        return DATASETS / "MNIST" / "raw"
    except Exception as error:  # no network, or a broken download
        raise FileNotFoundError(
            "MNIST is not available. Either set L2L_DATA_MIRROR to a folder holding "
            "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "
            f"(now: {mirror!r}), or let torchvision download it into {DATASETS} "
            f"(that failed: {error})."
        ) from error


@lru_cache(maxsize=None)
def _mnist_numpy(split: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file, count = MNIST_FILES[split]
    raw = _mnist_raw_dir()
    images, labels = _read_idx(raw / images_file), _read_idx(raw / labels_file)
    if images.shape != (count, 28, 28) or labels.shape != (count,):
        raise ValueError(f"MNIST {split}: unexpected shapes {images.shape}, {labels.shape} in {raw}")
    per_class = np.bincount(labels, minlength=10)
    if len(per_class) != 10 or per_class.min() < count // 20:
        raise ValueError(f"MNIST {split}: implausible label counts {per_class.tolist()} in {raw}")
    return images, labels


@lru_cache(maxsize=4)
def mnist(split: str = "train", device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images as float [N, 784] in [0, 1] and labels [N] (int64), kept on `device`."""
    if split not in MNIST_FILES:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")
    images, labels = _mnist_numpy(split)
    x = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / 255.0)
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)
