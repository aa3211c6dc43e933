import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Tests read MNIST from the shared mirror beside the checkout unless told otherwise.
_mirror = ROOT.parent / "shared" / "data"
if "L2L_DATA_MIRROR" not in os.environ and _mirror.exists():
    os.environ["L2L_DATA_MIRROR"] = str(_mirror)

# Two threads in all: `make test` runs pytest on two workers (pytest-xdist), one thread each.
torch.set_num_threads(max(1, min(2, torch.get_num_threads()) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))))


def _available(probe) -> bool:
    """Whether `probe()` finds its data (it raises FileNotFoundError when not)."""
    try:
        probe()
        return True
    except FileNotFoundError:
        return False


def _mnist():
    from l2l.data import mnist

    mnist("test")


def _cifar():
    from l2l.data import cifar_source

    cifar_source()


def _art():
    from l2l.data import ART_CONTENT, ART_STYLE, MOBILENET_FILE, mirror_file

    mirror_file(MOBILENET_FILE, "weights")
    for kind, files in (("content", ART_CONTENT), ("style", ART_STYLE)):
        for name in files.values():
            mirror_file(Path("neural_art") / kind / name, name)
    _cifar()  # the content pools are CIFAR-10 images too


def mnist_available() -> bool:
    return _available(_mnist)


def cifar_available() -> bool:
    return _available(_cifar)


def art_available() -> bool:
    return _available(_art)


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="MNIST not available (set L2L_DATA_MIRROR)")
needs_cifar = pytest.mark.skipif(not cifar_available(), reason="CIFAR-10 not available (set L2L_DATA_MIRROR)")
needs_art = pytest.mark.skipif(not art_available(),
                               reason="neural-art images, MobileNetV2 weights or CIFAR-10 not available (set L2L_DATA_MIRROR)")
