"""The command line: clear errors on bad input, and reproducible evaluation."""

import json

import pytest

from conftest import needs_cifar

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
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--steps", "0", "--json", "x"],
           "argument --steps: must be positive")
    _fails(capsys, ["train", "--problem", "quadratic", "--max-minutes", "0"], "argument --max-minutes: must be positive")
    _fails(capsys, ["train", "--problem", "quadratic", "--curriculum", "200,x"], "give horizons as integers, e.g. 200")
    _fails(capsys, ["train", "--problem", "quadratic", "--curriculum", "200,0"], "horizons must be at least 1")
    _fails(capsys, ["sweep", "--problem", "quadratic", "--only", "-1"], "trial numbers must be at least 0")


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
    for out in outs:  # what a curve cost to compute differs from run to run; its numbers may not
        assert all(c.pop("cost")["seconds"] >= 0 for c in out["optimizers"].values())
    assert outs[0] == outs[1]
    result = outs[0]["optimizers"]
    assert len(result["LSTM"]["per_run"]["loss"][-1]) == 8  # every test run's loss at the last step
    assert set(result) == {"LSTM", "SGD", "RMSprop", "ADAM", "NAG"}
    assert result["LSTM"]["lr"] is None and result["ADAM"]["lr"] > 0
    assert len(result["SGD"]["mean"]) == 21 and result["SGD"]["final_ci95"] > 0


def test_train_groups_option(tmp_path, capsys):
    import torch

    out = tmp_path / "one.pt"
    main(["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "1", "--groups", "1",
          "--out", str(out)])
    assert torch.load(out, weights_only=True)["config"]["optimizer"]["groups"] == 1
    # quadratics have one parameter group: two LSTMs cannot be fed
    _fails(capsys, ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--groups", "2",
                    "--out", str(tmp_path / "two.pt")], "2 LSTMs but the problem labels none")


def test_default_files_name_every_override_and_nothing_finished_is_overwritten(tmp_path, monkeypatch, capsys):
    from l2l.training import load_checkpoint

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    base = ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "2", "--no-progress"]
    main(base)
    main(base + ["--seed", "3"])
    main(base + ["--meta-lr", "0.01", "--preprocess", "none", "--clip", "none"])
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["quadratic-dim3-epochs2-metalr0.01-smoke.pt", "quadratic-dim3-epochs2-seed3-smoke.pt",
                     "quadratic-dim3-epochs2-smoke.pt"], names
    first = tmp_path / "checkpoints" / "quadratic-dim3-epochs2-smoke.pt"
    before = first.read_bytes()
    main(base)  # finished: returned as it is
    assert first.read_bytes() == before and "done" in capsys.readouterr().out
    _fails(capsys, base + ["--out", str(first), "--seed", "4"], "holds another recipe (seed: 0 there, 4 asked)")
    assert first.read_bytes() == before
    main(base + ["--out", str(first), "--seed", "4", "--force"])
    assert load_checkpoint(first)["config"]["seed"] == 4
    main(base[:-3] + ["--epochs", "3", "--out", str(first), "--seed", "4", "--no-progress"])  # extends it
    assert load_checkpoint(first)["epoch"] == 3


def test_evaluate_reads_the_problem_from_the_checkpoint_and_checks_labels(tmp_path, capsys):
    ck = tmp_path / "q.pt"
    main(["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "1", "--out", str(ck),
          "--no-progress"])
    out = tmp_path / "e.json"
    main(["evaluate", "--optimizer", str(ck), "--scale", "smoke", "--steps", "5", "--runs", "3", "--no-cache",
          "--baselines", "sgd", "--which", "last", "--json", str(out), "--no-progress"])
    result = json.loads(out.read_text())
    assert result["problem"] == "quadratic:dim=3" and result["weights"] == "last"
    base = ["evaluate", "--optimizer", str(ck), "--json", str(out)]
    _fails(capsys, base + ["--label", "a", "--label", "b"], "2 --label for 1 --optimizer")
    _fails(capsys, base + ["--label", "ADAM"], "label 'ADAM' is a baseline's name")
    _fails(capsys, ["evaluate", "--json", str(out)], "give --problem, or an --optimizer")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    _fails(capsys, ["evaluate", "--optimizer", str(bad), "--json", str(out)], "bad.pt is not a readable checkpoint")


def test_a_quadratic_optimizer_on_mnist_is_warned_about(tmp_path, capsys):
    from l2l.cli import _check_family
    from l2l.book.presets import train_config
    from l2l.problems import make_problem

    _check_family(make_problem("mnist"), train_config("quadratic", "smoke"), "q.pt")
    err = capsys.readouterr().err
    assert "trained on quadratic, not on the mnist family" in err and "preprocess=None" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    import l2l.cli as cli

    def broken(args):
        raise ValueError("an internal error, not the user's")

    monkeypatch.setattr(cli, "cmd_bench", broken)
    with pytest.raises(ValueError, match="internal error"):
        cli.main(["bench"])


def test_sweep_command_writes_its_table_and_trials_under_the_data_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    argv = ["sweep", "--problem", "quadratic:dim=3", "--scale", "smoke", "--trials", "2", "--epochs", "2",
            "--eval-every", "1", "--no-progress"]
    main(argv)
    out = capsys.readouterr().out
    table = tmp_path / "results" / "sweep-quadratic-dim3-0-smoke.json"
    assert table.exists() and out.count("<- winner") == 1 and str(table) in out
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "sweeps").glob("*.pt")) == [
        "sweep-quadratic-dim3-0-smoke-trial0.pt", "sweep-quadratic-dim3-0-smoke-trial1.pt"]
    _fails(capsys, argv + ["--meta-lr", "0.01"], "a sweep draws the meta-learning rate")
    _fails(capsys, argv + ["--only", "2"], "trial numbers from 0 to 1")
    _fails(capsys, argv + ["--only", "1,x"], "give trial numbers")


def test_train_seeds_trains_the_recipe_once_per_seed_each_into_its_own_file(tmp_path, capsys, monkeypatch):
    from l2l.training import load_checkpoint

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    argv = ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "2", "--eval-every", "1",
            "--no-progress"]
    main(argv + ["--seeds", "1,2"])
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.pt")) == ["quadratic-dim3-epochs2-evalevery1-seed1-smoke.pt",
                                                           "quadratic-dim3-epochs2-evalevery1-seed2-smoke.pt"]
    cks = {k: load_checkpoint(folder / f"quadratic-dim3-epochs2-evalevery1-seed{k}-smoke.pt") for k in (1, 2)}
    assert [cks[k]["config"]["seed"] for k in (1, 2)] == [1, 2] and all(ck["epoch"] == 2 for ck in cks.values())
    assert cks[1]["history"] != cks[2]["history"]  # two trainings, not one copied
    assert capsys.readouterr().out.count("epoch 2/2 (done)") == 2
    _fails(capsys, argv + ["--seeds", "1,2", "--seed", "3"], "give it without --seed and --out")
    _fails(capsys, argv + ["--seeds", "1,2", "--out", str(tmp_path / "x.pt")], "give it without --seed and --out")
    for arch in (["--gac", "2"], ["--groups", "2"]):  # refused before a trial is announced or a file made
        with pytest.raises(SystemExit) as exit_:
            main(argv + ["--seeds", "3,4", *arch])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "train other architectures one trial at a time" in err
        assert "training" not in err, err


def test_train_start_begins_at_another_checkpoint_beside_it(tmp_path, capsys, monkeypatch):
    from l2l.training import load_checkpoint

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    argv = ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "2", "--eval-every", "1",
            "--no-progress"]
    main(argv)
    first = "quadratic-dim3-epochs2-evalevery1-smoke"
    main(argv + ["--steps", "40", "--start", first])
    folder = tmp_path / "checkpoints"
    ck = load_checkpoint(folder / f"quadratic-dim3-steps40-epochs2-evalevery1-start{first}-smoke.pt")
    assert ck["started_from"]["file"] == f"{first}.pt" and ck["config"]["start"] == first
    _fails(capsys, argv + ["--start", "elsewhere"], "elsewhere.pt not found")
    _fails(capsys, argv + ["--start", f"{first}.pt"], "without .pt")


def test_cache_lists_what_executing_the_chapters_would_compute_again(tmp_path, monkeypatch, capsys):
    import json

    from l2l.evaluation import test_curve
    from l2l.optimizers import make_baseline
    from l2l.problems import make_problem

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    main(["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "1", "--no-progress"])
    capsys.readouterr()
    problem, curves = make_problem("quadratic:dim=3"), tmp_path / "results" / "curves"
    test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=curves)
    test_curve(problem, make_baseline("sgd", 0.1), "SGD", 5, 4, 0, cache=curves)
    for file in curves.glob("*.json"):
        saved = json.loads(file.read_text())
        if saved["key"].split("|")[1].startswith("SGD"):
            file.write_text(json.dumps({**saved, "probe": [p + 1 for p in saved["probe"]]}))
    main(["cache"])
    out = capsys.readouterr().out
    assert "stale  curve quadratic:dim=3 | SGD(lr=0.1) | steps=5|runs=4|seed=0" in out and "Adam" not in out
    assert "curves: 2, 1 current, 1 stale" in out and "computes 1 of them again" in out
    main(["cache", "--all"])
    assert "current  curve quadratic:dim=3 | Adam(lr=0.1" in capsys.readouterr().out


def test_cache_prunes_only_the_curves_of_weights_no_checkpoint_holds(tmp_path, monkeypatch, capsys):
    from l2l.evaluation import fingerprint, test_curve
    from l2l.optimizers import make_baseline
    from l2l.problems import make_problem
    from l2l.training import load_checkpoint, optimizer_from

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    argv = ["train", "--problem", "quadratic:dim=3", "--scale", "smoke", "--epochs", "1", "--no-progress"]
    main(argv)
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.pt")
    kept = optimizer_from(load_checkpoint(checkpoint))
    problem, curves = make_problem("quadratic:dim=3"), tmp_path / "results" / "curves"
    test_curve(problem, kept, "LSTM", 5, 4, 0, cache=curves)
    test_curve(problem, make_baseline("sgd", 0.1), "SGD", 5, 4, 0, cache=curves)
    main(argv + ["--seed", "5", "--out", str(tmp_path / "elsewhere.pt")])  # a checkpoint outside data/
    gone = optimizer_from(load_checkpoint(tmp_path / "elsewhere.pt"))
    test_curve(problem, gone, "LSTM seed 5", 5, 4, 0, cache=curves)
    capsys.readouterr()
    main(["cache"])
    assert "1 curve of learned optimizers that no checkpoint" in capsys.readouterr().out
    assert len(list(curves.glob("*.json"))) == 3  # listing deletes nothing
    main(["cache", "--prune"])
    assert "pruned 1 curve of" in capsys.readouterr().out
    left = "".join(f.read_text() for f in curves.glob("*.json"))
    assert fingerprint(kept) in left and "SGD(lr=0.1" in left and fingerprint(gone) not in left
    (tmp_path / "checkpoints").rename(tmp_path / "moved")  # with no checkpoint to read, every curve would go
    _fails(capsys, ["cache", "--prune"], "no checkpoints in")
    assert fingerprint(kept) in "".join(f.read_text() for f in curves.glob("*.json"))


def test_inputs_are_checked_before_the_work(tmp_path, capsys):
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--json", str(tmp_path)], "give a file in an existing folder")
    _fails(capsys, ["evaluate", "--problem", "quadratic", "--json", str(tmp_path / "no" / "x.json")], "existing folder")
    _fails(capsys, ["bench", "--runs", "1,x"], "give runs as integers, e.g. 1,16")
    _fails(capsys, ["bench", "--runs", "0"], "runs must be at least 1")
    _fails(capsys, ["bench", "--rounds", "0"], "must be positive, got 0")
    _fails(capsys, ["train", "--problem", "quadratic", "--teacher-lr", "0.1"], "give imitation too")


@needs_cifar
def test_cache_keeps_the_curves_of_what_chapters_make_from_a_checkpoint(tmp_path, monkeypatch, capsys):
    """Chapter 4 tests its optimizer with each LSTM silenced: weights no checkpoint holds as such, but
    made from one (`ablations`), so --prune must keep their curves."""
    from l2l.evaluation import fingerprint, test_curve
    from l2l.problems import make_problem
    from l2l.training import load_checkpoint, optimizer_from

    monkeypatch.setenv("L2L_DATA", str(tmp_path))
    main(["train", "--problem", "cifar:classes=2", "--scale", "smoke", "--epochs", "1", "--no-progress"])
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.pt")
    trained = optimizer_from(load_checkpoint(checkpoint))
    quiet = trained.silenced(0)
    assert [fingerprint(a) for a in trained.ablations()] == [fingerprint(quiet), fingerprint(trained.silenced(1))]
    curves = tmp_path / "results" / "curves"
    test_curve(make_problem("cifar:classes=2"), quiet, "conv LSTM silenced", 2, 1, 0, cache=curves)
    capsys.readouterr()
    main(["cache", "--prune"])
    assert "pruned 0 curves" in capsys.readouterr().out and fingerprint(quiet) in next(curves.glob("*.json")).read_text()


def test_the_sharing_options_build_what_the_optimizers_own_defaults_say():
    """--memory alone gets SharingConfig's two averaging cells (what BFGS's inner products need),
    --gac 0 without memory is the plain LSTM, and --gac alone is LSTM+GAC."""
    from l2l.cli import _recipe, parser
    from l2l.optimizers import LSTMConfig, SharingConfig

    recipe = lambda *options: _recipe(parser().parse_args(["train", "--problem", "quadratic", *options])).optimizer
    assert (recipe("--memory", "bfgs").gac, recipe("--memory", "bfgs").memory) == (2, "bfgs")
    assert isinstance(recipe("--gac", "0"), LSTMConfig) and isinstance(recipe(), LSTMConfig)
    assert recipe("--gac", "2") == SharingConfig(recipe(), gac=2)
    assert recipe("--gac", "0", "--memory", "lbfgs").gac == 0
    assert recipe("--memory", "lbfgs", "--read-bias", "zero") == SharingConfig(recipe(), gac=2, memory="lbfgs",
                                                                              read_bias="zero")
    with pytest.raises(ValueError, match="--read-bias sets the head"):
        recipe("--read-bias", "zero")  # no memory: no read keys to start anywhere
    with pytest.raises(ValueError, match="--update-bias sets the head"):
        recipe("--update-bias", "zero")  # would silently add two averaging cells
    assert isinstance(recipe("--update-bias", "random"), LSTMConfig)  # the default changes nothing
    with pytest.raises(ValueError, match="read_bias"):
        recipe("--gac", "2", "--read-bias", "zero")  # averaging cells but no memory: no read keys
    assert recipe("--memory", "lbfgs", "--read-bias", "zero", "--update-bias", "zero").update_bias == "zero"
    # the book prints the command that makes it, and names its checkpoint after the option
    from l2l.book.presets import command, recipe_path
    config = _recipe(parser().parse_args(["train", "--problem", "quadratic", "--memory", "lbfgs", "--read-bias", "zero"]))
    assert "--memory lbfgs --read-bias zero" in command(config) and recipe_path(config).name.endswith("readbiaszero.pt")
