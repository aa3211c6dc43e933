"""Datasets, read from a local mirror when one is given, else fetched with torchvision.

Set `L2L_DATA_MIRROR` to a folder in the layout of torchvision's downloads (`MNIST/raw/*.gz`,
`cifar-10-python.tar.gz` or its unpacked `cifar-10-batches-py/`) to work offline; otherwise the files
are downloaded into `<data>/datasets/` (`l2l.runtime.data_dir`; git-ignored) on first use.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import shutil
import tarfile
import tempfile
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from l2l.errors import UserError
from l2l.runtime import data_dir, locked

MIRROR_VAR = "L2L_DATA_MIRROR"


def datasets_dir() -> Path:
    """Where torchvision downloads datasets when there is no mirror: `<data>/datasets/`."""
    return data_dir() / "datasets"

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}


def _unavailable(name: str, layout: str, mirror: str | None, error: Exception) -> FileNotFoundError:
    """The error for a dataset found neither in the mirror nor by download: both ways, spelled out."""
    return FileNotFoundError(
        f"{name} is not available. Either set L2L_DATA_MIRROR to a folder holding {layout} "
        f"(now: {mirror!r}), or let torchvision download it into {datasets_dir()} (that failed: {error})."
    )


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

        MNIST(datasets_dir(), train=True, download=True)
        MNIST(datasets_dir(), train=False, download=True)
        return datasets_dir() / "MNIST" / "raw"
    except Exception as error:  # no network, or a broken download
        raise _unavailable("MNIST", "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz", mirror,
                           error) from error


@lru_cache(maxsize=None)
def _mnist_numpy(split: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file, count = MNIST_FILES[split]
    raw = _mnist_raw_dir()
    images, labels = _read_idx(raw / images_file), _read_idx(raw / labels_file)
    if images.shape != (count, 28, 28) or labels.shape != (count,):
        raise UserError(f"MNIST {split}: unexpected shapes {images.shape}, {labels.shape} in {raw}")
    per_class = np.bincount(labels, minlength=10)
    if len(per_class) != 10 or per_class.min() < count // 20:
        raise UserError(f"MNIST {split}: implausible label counts {per_class.tolist()} in {raw}")
    return images, labels


@lru_cache(maxsize=4)
def mnist(split: str = "train", device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images as float [N, 784] in [0, 1] and labels [N] (int64), kept on `device`."""
    if split not in MNIST_FILES:
        raise UserError(f"MNIST split must be 'train' or 'test', got {split!r}")
    images, labels = _mnist_numpy(split)
    x = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / 255.0)
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


# ---------------------------------------------------------------------------------------------
# CIFAR-10: the standard python pickles, read directly (the mirror's test images are not
# byte-identical to the official archive, so torchvision's md5 check would reject them)

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_FILES = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}


def cifar_source() -> Path:
    """The archive or folder holding CIFAR-10's pickles: the mirror's, else a torchvision download."""
    mirror = os.environ.get(MIRROR_VAR)
    candidates = [Path(mirror) / name for name in ("cifar-10-batches-py", "cifar-10-python.tar.gz")] if mirror else []
    candidates += [datasets_dir() / "cifar-10-batches-py"]
    for path in candidates:
        if path.exists():
            return path
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(datasets_dir(), train=True, download=True)
        return datasets_dir() / "cifar-10-batches-py"
    except Exception as error:
        raise _unavailable("CIFAR-10", "cifar-10-python.tar.gz (or its unpacked cifar-10-batches-py/)",
                           mirror, error) from error


UNPACKED, STAMP = "cifar-10-unpacked", "archive.json"  # an archive's pickles, unpacked once (not torchvision's folder)


def cifar_pickles() -> Path:
    """Where CIFAR-10's pickles are read: the source's folder; for an archive, its copy unpacked once
    into `<data>/datasets/cifar-10-unpacked/` (reading them out of the gzip cost every process several
    seconds), again when the archive changes, or the archive itself where that cannot be written."""
    source = cifar_source()
    if source.is_dir():
        return source
    folder, facts = datasets_dir() / UNPACKED, source.stat()
    stamp = {"archive": str(source.resolve()), "bytes": facts.st_size, "mtime_ns": facts.st_mtime_ns}
    if _stamp(folder) != stamp:
        try:
            with locked(folder):  # one process unpacks; the others wait, then read its copy
                if _stamp(folder) != stamp:
                    _unpack(source, folder, stamp)
        except OSError:  # a read-only or full data folder: read the archive as it is
            return source
    return folder


def _stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _unpack(archive: Path, folder: Path, stamp: dict):
    """`archive`'s pickles into `folder`, `stamp` beside them, replacing an older archive's: unpacked
    next to it and renamed, so that no process reads a partial folder. Under `locked(folder)`, so a
    scratch folder found beside it is that of a process killed while unpacking."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for left in folder.parent.glob(".unpacking-*"):
        shutil.rmtree(left, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder.parent))
    try:
        with tarfile.open(archive) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python ≥ 3.10.12
            tar.extractall(scratch, **safe)
        unpacked = scratch / "cifar-10-batches-py"
        (unpacked / STAMP).write_text(json.dumps(stamp))
        if folder.exists():  # another archive's copy, removed with the scratch
            os.rename(folder, scratch / "older")
        os.rename(unpacked, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@lru_cache(maxsize=None)
def cifar10_uint8(split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images as uint8 [N, 3, 32, 32] and labels [N], as stored (cached)."""
    source = cifar_pickles()
    batches = []
    if source.is_dir():
        for name in CIFAR_FILES[split]:
            with open(source / name, "rb") as f:
                batches.append(pickle.load(f, encoding="latin1"))
    else:
        with tarfile.open(source) as archive:
            for name in CIFAR_FILES[split]:
                f = archive.extractfile(f"cifar-10-batches-py/{name}")
                batches.append(pickle.load(f, encoding="latin1"))
    images = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([np.asarray(b["labels"]) for b in batches]).astype(np.int64)
    count = 50_000 if split == "train" else 10_000
    if images.shape != (count, 3, 32, 32) or labels.shape != (count,) or images.dtype != np.uint8:
        raise UserError(f"CIFAR-10 {split}: unexpected shapes {images.shape}, {labels.shape} in {source}")
    if np.bincount(labels, minlength=10).tolist() != [count // 10] * 10:
        raise UserError(f"CIFAR-10 {split}: expected {count // 10} images per class in {source}")
    return images, labels


@lru_cache(maxsize=4)
def cifar10(split: str = "train", device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images as float [N, 3, 32, 32], each channel standardized with the training split's
    mean and standard deviation, and labels [N] (int64), kept on `device`."""
    if split not in CIFAR_FILES:
        raise UserError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    images, labels = cifar10_uint8(split)
    mean, std = _cifar_stats()
    x = torch.from_numpy(images).float().div_(255.0).sub_(mean).div_(std)  # in place: 600 MB, not three times
    return x.to(device), torch.from_numpy(labels).to(device)


@lru_cache(maxsize=None)
def _cifar_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation [1, 3, 1, 1] of the training images in [0, 1]."""
    return byte_stats(torch.from_numpy(cifar10_uint8("train")[0]))


def byte_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (unbiased) [1, C, 1, 1], as float32, of uint8 images
    [N, C, H, W] read as values in [0, 1], from exact sums over each channel's histogram of bytes:
    rounded once, so (bar a constant channel, whose float64 spread is rounding noise) the float32
    numbers of the float64 computation, without a float64 copy of the images (1.2 GB for CIFAR-10)."""
    n = images.numel() // images.shape[1]
    if n < 2:
        raise ValueError("a standard deviation needs at least two values per channel")
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).tolist()
        s1 = sum(v * k for v, k in enumerate(counts))
        s2 = sum(v * v * k for v, k in enumerate(counts))
        means.append(float(Fraction(s1, 255 * n)))
        stds.append(math.sqrt(Fraction(n * s2 - s1 * s1, n * (n - 1) * 255**2)))
    shape = (1, images.shape[1], 1, 1)
    return tuple(torch.tensor(v, dtype=torch.float64, device=images.device).reshape(shape).float()
                 for v in (means, stds))


# ---------------------------------------------------------------------------------------------
# Neural art: photos, paintings and ImageNet MobileNetV2 weights, from the mirror only (nothing
# here can be downloaded: VGG's weights are not available offline, see l2l/problems/neural_art.py)

ART_CONTENT = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
               "rocket": "rocket.jpg", "grace_hopper": "grace_hopper.bmp"}
ART_STYLE = {"starry_night": "starry_night.jpg", "great_wave": "great_wave.jpg",
             "shipwreck_of_the_minotaur": "shipwreck_of_the_minotaur.jpg", "the_scream": "the_scream.jpg"}
MOBILENET_FILE = Path("mobilenet_v2") / "mobilenet_v2_imagenet_tflite_float.pt"


def mirror_file(relative: Path, what: str) -> Path:
    """A file inside the mirror, or a FileNotFoundError that says what is missing and where."""
    mirror = os.environ.get(MIRROR_VAR)
    if not mirror:
        raise FileNotFoundError(f"{what} is not available: set {MIRROR_VAR} to the data mirror "
                                f"holding {relative} (it cannot be downloaded)")
    path = Path(mirror) / relative
    if not path.exists():
        raise FileNotFoundError(f"{what} is not available: {path} does not exist "
                                f"({MIRROR_VAR}={mirror!r} should hold {relative})")
    return path


@lru_cache(maxsize=None)
def art_image(kind: str, name: str) -> np.ndarray:
    """One of the mirror's neural-art images as uint8 [H, W, 3] (RGB): kind 'content' (photos)
    or 'style' (paintings), name a key of ART_CONTENT or ART_STYLE."""
    files = {"content": ART_CONTENT, "style": ART_STYLE}.get(kind)
    if files is None:
        raise UserError(f"image kind must be 'content' or 'style', got {kind!r}")
    if name not in files:
        raise UserError(f"unknown {kind} image {name!r}; choose from {', '.join(files)}")
    from PIL import Image

    path = mirror_file(Path("neural_art") / kind / files[name], f"the {kind} image {name!r}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


@lru_cache(maxsize=None)
def mobilenet_v2_state() -> dict:
    """The ImageNet MobileNetV2 (1.0, 224) weights of the mirror, a state_dict for
    `torchvision.models.mobilenet_v2()` (see the mirror's mobilenet_v2/NOTES.md)."""
    path = mirror_file(MOBILENET_FILE, "the ImageNet MobileNetV2 weights")
    return torch.load(path, map_location="cpu", weights_only=True)
