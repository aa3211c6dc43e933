"""What chapters print: tables and the sentences computed from the numbers."""

import dataclasses

from l2l.evaluation import Curve
from l2l.book.report import final_table, ranking, versus_paper


def _curves():
    return {
        "LSTM": Curve("LSTM", [2.0, 1.0, 0.10], [0.0, 0.1, 0.01]),
        "ADAM": Curve("ADAM", [2.0, 0.5, 0.30], [0.0, 0.1, 0.01], lr=0.03),
        "SGD": Curve("SGD", [2.0, 1.5, 0.90], [0.0, 0.1, 0.50], lr=1.0),
    }


def test_final_table_lists_rates_intervals_and_paper_values():
    table = final_table(_curves(), {"LSTM": 0.04}, steps=(1, 2))
    lines = table.splitlines()
    assert lines[0] == "| optimizer | learning rate | loss at step 1 | loss at step 2 | paper (≈) |"
    assert "| LSTM | – | 1.000 ± 0.100 | 0.100 ± 0.010 | 0.04 |" in lines
    assert "| ADAM | 0.03 | 0.500 ± 0.100 | 0.300 ± 0.010 | – |" in lines


def test_ranking_without_per_run_numbers_compares_intervals_and_says_so():
    text = ranking(_curves())
    assert "At step 2, the LSTM is at 0.100, below the best tuned baseline (ADAM, 0.300)" in text
    assert "do not overlap" in text and f"lowest of these {len(_curves())} curves at 1 of the 2 steps" in text
    assert "not paired" in text
    worse = _curves()
    worse["LSTM"] = Curve("LSTM", [2.0, 1.0, 0.31], [0.0, 0.1, 0.05])
    assert "above the best tuned baseline (ADAM, 0.300), but the 95% intervals overlap" in ranking(worse)


def _paired_curves():
    import torch

    hard = torch.linspace(1, 2, 10)[:, None]  # ten functions, some harder than others
    t = torch.arange(201.0)
    base = hard * torch.exp(-t / 50)  # [10, 201]
    return {"LSTM": Curve.of("LSTM", base * torch.where(t < 100, 0.8, 1.2)),  # ahead, then behind
            "ADAM": Curve.of("ADAM", base, lr=0.01),
            "LSTM seed 1": Curve.of("LSTM seed 1", base * 0.8)}


def test_ranking_compares_with_every_curve_paired_at_the_step_it_names():
    curves = _paired_curves()
    text = ranking(curves, step=100)
    assert text.startswith("At step 100, the LSTM (")
    assert "is ahead of ADAM and level with LSTM seed 1;" not in text  # at 100: 1.2×ADAM: behind
    assert "is behind ADAM and LSTM seed 1;" in text
    assert "over steps 1–100, its loss averaged over those steps is ahead of ADAM, behind LSTM seed 1" in text
    assert "same 10 test runs" in text and "ends" not in text
    assert "is ahead of ADAM, level with LSTM seed 1;" in ranking(curves, step=50)
    # a label with a comma in it: every label quoted, so that the lists can be read
    commas = {("LSTM, seed 1" if k == "LSTM seed 1" else k): c for k, c in curves.items()}
    assert "At step 50, the “LSTM” (" in ranking(commas, step=50)
    assert "is ahead of “ADAM”, level with “LSTM, seed 1”;" in ranking(commas, step=50)


def test_paired_table_gives_differences_intervals_and_verdicts():
    from l2l.book.report import paired_table

    table = paired_table(_paired_curves(), steps=(50, 200)).splitlines()
    assert table[0] == "| LSTM − | at step 50 | verdict | at step 200 | verdict | mean over steps 1–200 | verdict |"
    adam = next(line for line in table if line.startswith("| ADAM |"))
    assert adam.count("holds") == 2 and adam.count("fails") == 1  # early lead outweighs the late loss
    assert "−0." in adam and "[" in adam


def test_versus_paper_ratios():
    assert versus_paper(_curves(), {"LSTM": 0.05, "ADAM": 0.1}) == \
        "Every optimizer ends above the paper's value, by 2.0× to 3.0×."


def test_small_losses_keep_two_significant_digits():
    from l2l.book.report import loss_text

    assert loss_text(0.5213) == "0.521"
    assert loss_text(0.000203) == "0.0002"
    assert loss_text(0.00504) == "0.005"
    assert loss_text(0.0) == "0.000"


def test_seeds_table_counts_the_trained_optimizers_below_every_tuned_baseline():
    import torch

    from l2l.book.report import seeds_table

    curves = _paired_curves()
    text = seeds_table(curves, ["LSTM", "LSTM seed 1"], step=200)
    assert "| trained optimizer | loss at step 200 | − ADAM at step 200 | below every tuned baseline |" in text
    assert "1 of 2 trained optimizers are below every tuned baseline at step 200 (paired; the best tuned baseline, ADAM, ends at" in text
    assert "span" in text and "standard deviation across trainings" in text
    # NAG: worse than ADAM on average but so noisy that "below NAG" is a tie: below the best
    # baseline (ADAM) is then not enough
    noise = torch.tensor([3.0, -3.0] * 5)[:, None] * torch.exp(-torch.arange(201.0) / 50)
    base = torch.linspace(1, 2, 10)[:, None] * torch.exp(-torch.arange(201.0) / 50)  # as _paired_curves
    curves["NAG"] = Curve.of("NAG", base * 1.05 + noise, lr=0.1)
    text = seeds_table(curves, ["LSTM", "LSTM seed 1"], step=200)
    row = next(line for line in text.splitlines() if line.startswith("| LSTM seed 1 |")).split("|")
    assert row[3].strip().startswith("−") and row[4].strip() == "tie (NAG)"  # below ADAM, level with NAG
    lstm = next(line for line in text.splitlines() if line.startswith("| LSTM |")).split("|")
    assert lstm[4].strip() == "fails (ADAM)"  # behind ADAM at 200 (a tie with NAG does not count)
    assert "0 of 2 trained optimizers are below every tuned baseline" in text
    assert "took" not in text
    # what each training took, where the chapter knows it
    text = seeds_table(curves, ["LSTM", "LSTM seed 1"], step=200, costs={"LSTM seed 1": "40 epochs, 3 min on EPYC"})
    assert text.endswith("\n\nWhat each one's meta-training took:\n\n- LSTM seed 1: 40 epochs, 3 min on EPYC")


def test_seeds_tables_show_each_step_once_in_order_with_the_costs_under_the_last():
    from l2l.book.report import seeds_table, seeds_tables

    curves, trained, took = _paired_curves(), ["LSTM", "LSTM seed 1"], {"LSTM seed 1": "40 epochs, 3 min on EPYC"}
    text = seeds_tables(curves, trained, (200, 100, 200), took)
    assert text == (seeds_table(curves, trained, step=100) + "\n\n"
                    + seeds_table(curves, trained, step=200, costs=took))
    assert text.count("What each one's meta-training took") == 1
    assert seeds_tables(curves, trained, (200,)) == seeds_table(curves, trained, step=200)


def test_the_sweep_table_says_where_the_search_stands():
    from l2l.book.report import sweep_table

    row = lambda k, lr, epochs, val, finished: {
        "trial": k, "meta_lr": lr, "epochs": epochs, "finished": finished, "best_val": val, "best_epoch": 50,
        "validation": [[50, val], [60, 2 * val]] if epochs else [], "minutes": 12.0, "hardware": "EPYC (1 thread)", "population": 1}
    result = {"recipe": {"epochs": 100}, "trials": 4, "complete": False, "winner": None,
              "rows": [row(0, 3e-4, 60, 0.5, False), row(1, 2e-3, 0, float("inf"), False)]}
    text = sweep_table(result)
    assert "| 0 | 0.0003 | 60 of 100 | 0.5000 (50) | 1.0000 | 12 | EPYC (1 thread) |" in text
    assert "| 1 | 0.002 | 0 of 100 | – | – |" in text
    assert "Of 4 trials, 0 have finished their 100 epochs, 2 are part-way and 2 have not started." in text
    assert "No winner is chosen until a trial finishes." in text
    result.update(winner=0, rows=[row(0, 3e-4, 100, 0.5, True), row(1, 2e-3, 100, 0.7, True)])
    text = sweep_table(result, reference=("the book's optimizer", 0.55))
    assert "Of 4 trials, 2 have finished their 100 epochs, 0 are part-way and 2 have not started." in text
    result.update(trials=3, rows=[*result["rows"][:1], row(1, 2e-3, 60, 0.7, False)])
    assert "Of 3 trials, 1 has finished its 100 epochs, 1 is part-way and 1 has not started." in sweep_table(result)
    assert ("The lowest best validation so far is trial 0's, 0.5000 at meta-learning rate 0.0003 "
            "(the book's optimizer: 0.5500, on the same validation functions).") in text
    result.update(trials=2, complete=True, rows=[row(0, 3e-4, 100, 0.5, True), row(1, 2e-3, 100, 0.7, True)])
    text = sweep_table(result)
    assert "All 2 trials have finished their 100 epochs. The lowest best validation is trial 0's" in text


def test_a_curriculum_s_stages_table_gives_each_horizon_its_epochs_minutes_and_best_validation():
    from l2l.book.report import stages_table

    history = [{"epoch": 50, "train": 9.0, "val": 0.40, "time": 120.0, "steps": 100, "val_steps": 200},
               {"epoch": 100, "train": 8.0, "val": 0.35, "time": 240.0, "steps": 100, "val_steps": 200,
                "advanced_to": 200, "mark": 0.47},
               {"epoch": 150, "train": 7.0, "val": 0.50, "time": 600.0, "steps": 200, "val_steps": 500},
               {"epoch": 200, "train": 7.0, "val": 0.45, "time": 960.0, "steps": 200, "val_steps": 500,
                "advanced_to": 500, "mark": 0.9},
               {"epoch": 250, "train": 7.0, "val": 0.95, "time": 2000.0, "steps": 500, "val_steps": 1000}]
    rows = stages_table(history).splitlines()[2:]
    assert rows == ["| 100 | 200 | 1–100 | 4.0 | – | 0.350 |", "| 200 | 500 | 101–200 | 12.0 | 0.470 | 0.450 |",
                    "| 500 | 1,000 | 201–250 | 17.3 | 0.900 | none better |"]


def test_a_recipe_s_command_makes_that_recipe_at_its_checkpoint(tmp_path):
    """`presets.command` is what a chapter tells a reader to run: the CLI must parse it back to the
    same recipe, every digit of it, and write it where `recipe_path` says (or to `out`)."""
    import shlex

    import pytest

    from l2l.book.presets import command, recipe_path, train_config
    from l2l.cli import _recipe, parser
    from l2l.errors import UserError
    from l2l.optimizers import LSTMConfig, SharingConfig
    from l2l.runtime import checkpoints_dir, repository

    recipes = [("book", train_config("mnist", curriculum=(200, 500, 1000), imitation=0.3, teacher_lr=2.0**-9)),
               ("smoke", train_config("mnist", "smoke", seed=2, clip=None, meta_lr=0.0023456789)),
               ("book", train_config("cifar", optimizer=LSTMConfig(preprocess=10.0, output_scale=(0.01, 0.1), groups=2))),
               ("book", train_config("quadratic", optimizer=SharingConfig(LSTMConfig(preprocess=10.0), gac=2))),
               ("book", train_config("mnist", seed=1, imitation=0.3, teacher_lr=0.03125)),
               ("book", train_config("cifar", steps=1000, start="cifar-curriculum200x500x1000")),
               ("book", train_config("mnist"))]
    for scale, recipe in recipes:
        for out in (None, tmp_path / "elsewhere.pt", repository() / "data" / "checkpoints" / "sweeps" / "t.pt"):
            line = command(recipe, scale, out)
            assert line.startswith("python -m l2l train ") and line.endswith(" --compile")
            args = parser().parse_args(shlex.split(line)[3:])
            assert _recipe(args) == recipe, line
            assert args.scale == scale
            # as cmd_train does, run from the project's folder
            written = repository() / args.out if args.out else recipe_path(_recipe(args), args.scale)
            assert written == (out or checkpoints_dir() / recipe_path(recipe, scale).name), line
            if out is not None and out.name == "t.pt":  # inside the project: as a reader types it there
                assert " --out data/checkpoints/sweeps/t.pt " in line
    assert command(recipes[-1][1]) == "python -m l2l train --problem mnist --compile"
    assert recipe_path(recipes[0][1]).name == "mnist-curriculum200x500x1000-imitation0.3-teacherlr0.00195312.pt"
    assert recipe_path(recipes[4][1], folder=tmp_path) == tmp_path / "mnist-seed1-imitation0.3-teacherlr0.03125.pt"
    assert recipe_path(recipes[5][1]).name == "cifar-steps1000-startcifar-curriculum200x500x1000.pt"
    with pytest.raises(UserError, match="no option for window"):
        command(train_config("quadratic", optimizer=SharingConfig(LSTMConfig(), memory="lbfgs", window=5)))


def test_the_ingredients_table_gives_each_recipe_its_cost_and_paired_difference_from_the_base():
    import torch

    from l2l.book.report import ingredients_table

    hard = torch.linspace(1, 2, 10)[:, None]
    t = torch.arange(201.0)
    base = hard * torch.exp(-t / 50)
    noise = 0.001 * torch.randn(10, 1, generator=torch.Generator().manual_seed(0))
    curves = {"LSTM": Curve.of("LSTM", base), "LSTM + a": Curve.of("LSTM + a", base * 0.5),
              "LSTM + b": Curve.of("LSTM + b", base * 1.5), "LSTM + c": Curve.of("LSTM + c", base + noise)}
    costs = {"LSTM": "1,500 epochs, 50 min", "LSTM + a": "1,500 epochs, 60 min",
             "LSTM + b": "10 of 1,500 epochs (unfinished), 1 min", "LSTM + c": "x"}
    lines = ingredients_table(curves, "LSTM", costs, steps=(100, 200)).splitlines()
    assert lines[0] == ("| recipe | meta-training | loss at step 100 | − LSTM at step 100 | loss at step 200 | "
                        "− LSTM at step 200 |")
    rows = {line[2:-2].split(" | ")[0]: line[2:-2].split(" | ") for line in lines[2:]}
    assert list(rows) == list(costs)
    assert rows["LSTM"][3] == "–" and rows["LSTM + b"][1] == costs["LSTM + b"]
    assert rows["LSTM + a"][3].startswith("−") and rows["LSTM + a"][3].endswith("lower")
    assert rows["LSTM + b"][5].startswith("+") and rows["LSTM + b"][5].endswith("higher")
    assert rows["LSTM + c"][3].endswith("tie")
    assert rows["LSTM + a"][2] == f"{float(base[:, 100].mean()) * 0.5:.3f} ± {curves['LSTM + a'].ci95[100]:.3f}"
    curves["LSTM + a"] = Curve("LSTM + a", curves["LSTM + a"].mean, curves["LSTM + a"].ci95)  # no per-run numbers
    row = ingredients_table(curves, "LSTM", costs, steps=(100,)).splitlines()[3][2:-2].split(" | ")
    gap = curves["LSTM + a"].mean[100] - curves["LSTM"].mean[100]
    assert row[3] == f"−{abs(gap):.3f} (unpaired) lower"


def test_spent_says_how_far_a_training_got():
    from l2l.book.presets import train_config
    from l2l.book.report import spent

    recipe = train_config("mnist")  # 1,500 epochs
    ck = {"epoch": 455, "wall_time": 127.1 * 60, "imitated": 118}
    assert spent(ck) == "455 epochs, 118 of them imitating, 127 min"
    assert spent(ck, recipe) == "455 of 1,500 epochs (unfinished), 118 of them imitating, 127 min"
    assert spent({**ck, "stopped": True, "imitated": 0}, recipe) == (  # stopped by its rule
        "455 of 1,500 epochs (stopped: validation stopped improving), 127 min")
    assert spent({**ck, "stopped": True, "imitated": 0}) == "455 epochs, 127 min"  # no recipe: no total to name
    staged = dataclasses.replace(recipe, curriculum=(200, 500, 1000))  # the curriculum's rule names the stage
    assert spent({**ck, "stopped": True, "imitated": 0, "stage": 2, "stage_improved": False}, staged) == (
        "455 of 1,500 epochs (stopped: its 500-step stage never improved on the weights it started from), 127 min")
    assert spent({**ck, "epoch": 1500}, recipe) == "1,500 epochs, 118 of them imitating, 127 min"
    assert spent({**ck, "hardware": "Intel(R) Xeon(R) Processor (1 thread)"}) == (  # where it ran, where recorded
        "455 epochs, 118 of them imitating, 127 min on Intel Xeon Processor (1 thread)")
    begun = {**ck, "imitated": 0, "started_from": {"file": "cifar.pt", "epoch": 300, "val": 0.9}}
    assert spent(begun, recipe) == "455 of 1,500 epochs (unfinished), from `cifar.pt`'s best weights (its epoch 300), 127 min"


def test_hardware_text_names_each_machine_once():
    from l2l.book.report import hardware_text

    assert hardware_text("AMD EPYC family 25 model 1 (2 threads)") == "AMD EPYC (2 threads)"
    assert hardware_text("AMD EPYC (1 thread), then AMD EPYC family 25 model 1 (1 thread)") == "AMD EPYC (1 thread)"
    assert hardware_text("AMD EPYC (1 thread), then NVIDIA H200, then AMD EPYC family 25 model 1 (1 thread)") == (
        "AMD EPYC (1 thread), then NVIDIA H200, then AMD EPYC (1 thread)")  # a machine left and come back to
    assert hardware_text("AMD EPYC (1 thread), then AMD EPYC (2 threads)") == (
        "AMD EPYC (1 thread), then AMD EPYC (2 threads)")  # another thread count: not the same
    assert hardware_text("NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"


def test_unfinished_names_how_far_only_while_unfinished():
    from l2l.book.presets import train_config
    from l2l.book.report import unfinished

    recipe = train_config("mnist")  # 1,500 epochs
    assert unfinished({"epoch": 455, "history": []}, recipe) == "455 of 1,500 epochs"
    assert unfinished({"epoch": 1500}, recipe) is None
    assert unfinished({"epoch": 455, "stopped": True}, recipe) is None  # stopped by its own rule: finished
    assert unfinished(None, recipe) is None  # not trained: no results file to mark
    # the recipe's other seeds join it, and keep it unfinished while they run
    assert unfinished({"epoch": 455, "history": []}, recipe, "seed 1: 20 of 1,500 epochs") == "455 of 1,500 epochs; seed 1: 20 of 1,500 epochs"
    assert unfinished({"epoch": 1500}, recipe, "seed 1: 20 of 1,500 epochs", "seed 2: 30 of 1,500 epochs") == (
        "seed 1: 20 of 1,500 epochs; seed 2: 30 of 1,500 epochs")
    assert unfinished({"epoch": 1500}, recipe, *[]) is None
    # once validated, the weights tested are the best so far: the note says where they come from
    validated = {"epoch": 455, "history": [{"epoch": 450}], "best": {"epoch": 300, "val": 0.3}}
    assert unfinished(validated, recipe, label="LSTM seed 0") == "LSTM seed 0: 455 of 1,500 epochs (best weights: epoch 300)"


def test_the_horizons_shown_are_those_the_best_weights_trained_on():
    """A curriculum that moved on to 500-step runs but never beat the weights trained on 200 shows
    100 and 200 (the best weights' stage), not the recipe's every horizon."""
    from l2l.book.presets import train_config
    from l2l.book.report import trained_horizons

    recipe = dataclasses.replace(train_config("mnist"), curriculum=(200, 500, 1000))
    history = [{"epoch": 150, "steps": 100}, {"epoch": 300, "steps": 200}, {"epoch": 350, "steps": 200},
               {"epoch": 400, "steps": 500}, {"epoch": 500, "steps": 500}]
    assert trained_horizons({"history": history, "best": {"epoch": 300}}, recipe) == (100, 200)
    assert trained_horizons({"history": history, "best": {"epoch": 400}}, recipe) == (100, 200, 500)
    plain = train_config("mnist")
    assert trained_horizons({"history": [{"epoch": 50}], "best": {"epoch": 50}}, plain) == (100,)


def test_a_training_in_one_line_says_what_it_took_and_what_it_found():
    from l2l.book.report import minutes_text, trained_text

    assert minutes_text(7.34 * 60) == "7.3 min" and minutes_text(763.2 * 60) == "763 min"
    assert minutes_text(10_023 * 60) == "10,023 min"
    ck = {"epoch": 10_000, "wall_time": 763.2 * 60, "hardware": "AMD EPYC, 1 thread",
          "best": {"epoch": 4650, "val": 0.24081}, "skipped": 2}
    assert trained_text(ck) == ("10,000 epochs, 763 min on AMD EPYC, 1 thread; best validation loss 0.2408 "
                                "at epoch 4,650; 2 epochs skipped (non-finite loss)")
    assert trained_text({**ck, "skipped": 0}) == ("10,000 epochs, 763 min on AMD EPYC, 1 thread; "
                                                  "best validation loss 0.2408 at epoch 4,650")
    begun = {**ck, "skipped": 0, "best": {"epoch": 0, "val": 0.9}, "started_from": {"file": "a.pt", "epoch": 7, "val": 0.9}}
    assert trained_text(begun) == ("10,000 epochs, from `a.pt`'s best weights (its epoch 7), 763 min on AMD EPYC, 1 thread; "
                                   "best validation loss 0.9000 at epoch 0 (where it started)")


def test_stalls_say_which_trials_sat_at_chance_and_whether_they_learned_again():
    import math

    from l2l.book.report import at_chance, stalls, sweep_table

    chance = math.log(10)
    rows = [{"trial": 0, "finished": True, "validation": [[50, 0.5], [100, 2.3026], [150, 2.31], [200, 0.4]]},
            {"trial": 1, "finished": False, "validation": [[50, 2.30], [100, 2.3026]]},
            {"trial": 2, "finished": True, "validation": [[50, 2.3026], [100, 0.45], [150, 2.3026], [200, 0.3]]}]
    assert [at_chance(r["validation"], chance) for r in rows] == [[(100, 150, 200)], [(50, 100, None)], []]
    assert stalls({"rows": rows}, chance) == (
        "At chance (validation 2.29 or above; a uniform guess scores 2.303) for two validations or more in a row: "
        "trial 0 from epoch 100 to 150, learning again by 200; trial 1 from epoch 50 to 100, its last validation "
        "so far.")  # trial 2 sat there once at a time: not a stall
    assert stalls({"rows": rows[2:]}, chance).endswith("in a row: none.")
    table = {"recipe": {"epochs": 200}, "trials": 3, "winner": None, "complete": False,
             "rows": [{**r, "meta_lr": 0.01, "epochs": 200, "best_val": 0.3, "best_epoch": 200, "minutes": 1.0,
                       "hardware": "cpu"} for r in rows]}
    assert sweep_table(table, chance=chance).endswith(stalls(table, chance))
    assert "At chance" not in sweep_table(table)


def test_drift_pairs_each_runs_change_between_two_steps():
    import pytest
    import torch

    from l2l.book.report import drift
    from l2l.errors import UserError

    def curve(changes):  # 4 runs at 1.0 up to step 5, then each moves by its change at step 10
        losses = torch.ones(4, 11)
        losses[:, 6:] += torch.tensor(changes)[:, None]
        return Curve.of("LSTM", losses)

    # changes −1, −1.2, −0.8, −1: mean −1, sd 0.163, t(3) 3.182: half-width 0.26
    falls = drift(curve([-1.0, -1.2, -0.8, -1.0]), 5)
    assert falls == ("From step 5 to step 10, LSTM's loss changes by −1.000 [−1.260, −0.740] (each run's change, "
                     "over the same 4 runs, 95% interval): it keeps falling.")
    assert drift(curve([1.0, 1.2, 0.8, 1.0])).startswith("From step 5 to step 10,")  # halfway: step 5
    assert drift(curve([1.0, 1.2, 0.8, 1.0]), 5).endswith("it climbs back.")
    assert drift(curve([1.0, -1.0, 1.0, -1.0]), 5, 10).endswith("by more than the runs can tell.")
    with pytest.raises(UserError, match="per-run"):  # a curve from before per-run records
        drift(dataclasses.replace(curve([1.0] * 4), per_run=None))


def test_trainings_total_adds_every_training_and_counts_those_on_a_gpu():
    from l2l.book.report import trainings_total

    cks = [{"wall_time": 3600.0, "hardware": "AMD EPYC (1 thread)"},
           {"wall_time": 5400.0, "hardware": "AMD EPYC (1 thread), then NVIDIA H200, then AMD EPYC (1 thread)"},
           {"wall_time": 1800.0, "hardware": "NVIDIA H100 80GB HBM3"}]
    assert trainings_total(cks) == "3 trainings, 3.0 hours in all (wall time; 2 of them partly on a GPU)"
    assert trainings_total(cks[:1]) == "1 training, 1.0 hours in all (wall time)"


def test_the_architectures_table_gives_each_training_s_paired_verdict_per_network_and_counts_them():
    """Fig. 6 as a table: one row per network, each trained optimizer's mean ± interval at step 100
    with its verdict against both baselines beside it (paired: the same runs), then the counts."""
    import torch

    from l2l.book.report import architectures_table

    hard = torch.linspace(1, 2, 8)[:, None] * torch.exp(-torch.arange(101.0) / 30)  # 8 shared test functions
    wobble = 1 + 0.01 * torch.randn(8, 101, generator=torch.Generator().manual_seed(0))
    network = lambda lstm, seed1: {"LSTM": Curve.of("LSTM", hard * lstm * wobble),
                                   "LSTM seed 1": Curve.of("LSTM seed 1", hard * seed1 * wobble.flip(0)),
                                   "ADAM": Curve.of("ADAM", hard, lr=0.03), "NAG": Curve.of("NAG", hard * 1.2, lr=0.5)}
    sweep = {(1, 20): network(0.5, 1.5), (2, 20): network(0.8, 0.9)}
    text = architectures_table(sweep, ["LSTM", "LSTM seed 1"])
    lines = text.splitlines()
    assert lines[0] == "| layers | hidden | LSTM | LSTM seed 1 | ADAM | NAG |"
    assert lines[2].startswith("| 1 | 20 | ") and lines[2].split("|")[3].strip().endswith(" holds")
    assert lines[2].split("|")[4].strip().endswith(" fails")  # 1.5× ADAM
    assert lines[3].split("|")[4].strip().endswith(" holds")
    adam = hard[:, 100].mean().item()
    assert lines[2].split("|")[5].strip().startswith(f"{adam:.3f} ± ")
    assert ("of 2 networks: LSTM holds in 2, is a tie in 0 and fails in 0; LSTM seed 1 holds in 1, is a tie in 0 "
            "and fails in 1.") in text
    assert "Below ADAM and NAG, each tuned per network, at step 100 (paired 95% intervals over the same 8 test runs)" in text
