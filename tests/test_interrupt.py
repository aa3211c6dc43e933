"""A training process killed in the middle of an epoch (SIGKILL: no chance to save; SIGINT: Ctrl-C,
and SIGTERM: `kill`, which save) resumes to exactly the run that was never interrupted."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from l2l.cli import main
from l2l.training import load_checkpoint

ARGS = ["train", "--problem", "quadratic:dim=5", "--scale", "smoke", "--epochs", "100", "--eval-every", "10",
        "--runs", "2", "--steps", "20", "--unroll", "5", "--no-progress"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The run that was never interrupted (one for the three signals)."""
    path = tmp_path_factory.mktemp("whole") / "whole.pt"
    main(ARGS + ["--out", str(path)])
    return load_checkpoint(path)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_killed_training_resumes_to_the_uninterrupted_run(tmp_path, sig, whole):
    cut = tmp_path / "cut.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a shell that starts the tests in the background makes its children ignore SIGINT: restore it
    proc = subprocess.Popen([sys.executable, "-m", "l2l", *ARGS, "--out", str(cut)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600  # generous: a loaded machine (threads oversubscribed) is slow
    while not cut.exists():  # the first checkpoint (epoch 10), then somewhere in the epochs after it
        assert proc.poll() is None, "training ended before it was killed"
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.01)
    time.sleep(0.1)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # nothing left running if it did not stop
    assert proc.returncode != 0
    if sig != signal.SIGKILL:  # one line saying so, not a traceback
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.rstrip().endswith("the same command continues"), err
    stopped = load_checkpoint(cut)
    assert 10 <= stopped["epoch"] < 100, stopped["epoch"]
    main(ARGS + ["--out", str(cut)])  # the same command resumes
    a, b = whole, load_checkpoint(cut)
    strip = lambda history: [(h["epoch"], h["train"], h["val"]) for h in history]
    assert strip(b["history"]) == strip(a["history"])
    torch.testing.assert_close(b["weights"], a["weights"], rtol=0, atol=0)
    torch.testing.assert_close(b["best"]["weights"], a["best"]["weights"], rtol=0, atol=0)
    assert b["skipped"] == a["skipped"] and b["epoch"] == 100
