import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Tests read MNIST from the shared mirror beside the checkout unless told otherwise.
_mirror = ROOT.parent / "shared" / "data"
if "L2L_DATA_MIRROR" not in os.environ and _mirror.exists():
    os.environ["L2L_DATA_MIRROR"] = str(_mirror)

torch.set_num_threads(min(2, torch.get_num_threads()))


def mnist_available() -> bool:
    try:
        from l2l.data import mnist

        mnist("test")
        return True
    except FileNotFoundError:
        return False


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="MNIST not available (set L2L_DATA_MIRROR)")


def cifar_available() -> bool:
    try:
        from l2l.data import _cifar_source

        _cifar_source()
        return True
    except FileNotFoundError:
        return False


needs_cifar = pytest.mark.skipif(not cifar_available(), reason="CIFAR-10 not available (set L2L_DATA_MIRROR)")
