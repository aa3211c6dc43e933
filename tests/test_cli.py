"""The command line: clear errors on bad input, and reproducible evaluation."""

import json

import pytest

from l2l.cli import main


def _fails(capsys, argv, match):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert match in err, err


def test_unknown_problem_lists_the_known_ones(capsys):
    _fails(capsys, ["train", "--problem", "rosenbrock"], "Known problems and their options: quadratic")


def test_unknown_option_lists_the_options(capsys):
    _fails(capsys, ["train", "--problem", "quadratic:size=3"], "dim=10")


def test_bad_scale_baseline_device_and_counts(capsys):
    _fails(capsys, ["train", "--problem", "quadratic", "--scale", "huge"], "invalid choice: 'huge'")
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--baselines", "sgd,lbfgs", "--json", "x"],
           "unknown baseline(s) lbfgs")
    _fails(capsys, ["bench", "--device", "tpu0"], "not a device")
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--steps", "0", "--json", "x"], "--steps must be positive")


def test_missing_checkpoint_says_how_to_make_one(capsys, tmp_path):
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--optimizer", str(tmp_path / "none.pt"),
                    "--json", str(tmp_path / "o.json")], "python -m l2l train")


def test_train_then_evaluate_twice_gives_the_same_numbers(tmp_path, capsys):
    ck = tmp_path / "q.pt"
    main(["train", "--problem", "quadratic", "--scale", "smoke", "--out", str(ck)])
    assert ck.exists()
    outs = []
    for name in ("a.json", "b.json"):
        main(["evaluate", "--problem", "quadratic", "--optimizer", str(ck), "--scale", "smoke",
              "--steps", "20", "--runs", "8", "--no-cache", "--json", str(tmp_path / name)])
        outs.append(json.loads((tmp_path / name).read_text()))
    assert outs[0] == outs[1]
    result = outs[0]["optimizers"]
    assert set(result) == {"LSTM", "SGD", "RMSprop", "ADAM", "NAG"}
    assert result["LSTM"]["lr"] is None and result["ADAM"]["lr"] > 0
    assert len(result["SGD"]["mean"]) == 21 and result["SGD"]["final_ci95"] > 0


def test_train_groups_option(tmp_path, capsys):
    import torch

    out = tmp_path / "one.pt"
    main(["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "1", "--groups", "1",
          "--out", str(out)])
    assert torch.load(out, weights_only=False)["config"]["optimizer"]["groups"] == 1
    # quadratics have one parameter group: two LSTMs cannot be fed
    _fails(capsys, ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--groups", "2",
                    "--out", str(tmp_path / "two.pt")], "2 LSTMs but the problem labels none")
