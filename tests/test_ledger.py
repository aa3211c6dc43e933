"""The claims ledger: every cell computed from results files (here a small fixture)."""

import os

import pytest
import torch

from l2l.book import ledger
from l2l.book.ledger import Claim
from l2l.book.report import loss_text, signed_text
from l2l.evaluation import Curve, save
from l2l.training.meta_train import RETRAINED_SINCE


def _fixture(folder):
    hard = torch.linspace(1, 2, 12)[:, None]  # twelve test functions shared by every optimizer
    decay = torch.exp(-torch.arange(101.0) / 30)
    noise = lambda seed: 1 + 0.01 * torch.randn(12, 101, generator=torch.Generator().manual_seed(seed))
    curves = {"LSTM": Curve.of("LSTM", hard * decay * 0.5 * noise(0)),
              "LSTM seed 1": Curve.of("LSTM seed 1", hard * decay * 1.5 * noise(1)),
              "ADAM": Curve.of("ADAM", hard * decay * noise(2), lr=0.01),
              "SGD": Curve.of("SGD", hard * decay * 2 * noise(3), lr=0.1)}
    save(curves, folder / "good.json", trained=["LSTM", "LSTM seed 1"], runs=12)
    save({**curves, "LSTM": curves["ADAM"].__class__("LSTM", curves["ADAM"].mean, curves["ADAM"].ci95,
                                                      None, curves["ADAM"].per_run)}, folder / "level.json")
    (folder / "sweep").mkdir()
    for k in range(3):
        save(curves if k < 2 else {**curves, "LSTM": curves["LSTM seed 1"]}, folder / "sweep" / f"{k}.json")
    old = {k: Curve(k, c.mean, c.ci95, c.lr) for k, c in curves.items()}  # no per-run numbers
    save(old, folder / "old.json", runs=12)
    return curves


def test_rows_are_computed_from_the_results(tmp_path):
    _fixture(tmp_path)
    rows = ledger.ledger([
        Claim("beats", "≈ 0.1", "01_quadratics", "good", 100),
        Claim("level", "–", "01_quadratics", "level", 100),
        Claim("worse", "–", "01_quadratics", "good", 100, learned="LSTM seed 1"),
        Claim("behind", "–", "01_quadratics", "good", 100, learned="LSTM seed 1", higher=True,
              against=("ADAM",)),
        Claim("sweep", "–", "02_mnist", "sweep/*", 100),
        Claim("old", "–", "04_cifar", "old", 100),
        Claim("missing", "–", "04_cifar", "nothing", 100),
    ], tmp_path)
    verdicts = {r.claim.claim: r.verdict for r in rows}
    assert verdicts == {"beats": "holds", "level": "tie", "worse": "fails", "behind": "holds",
                        "sweep": "partly", "old": "holds", "missing": "no results"}
    beats = rows[0]
    assert beats.trained == "1 of 2"  # seed 1 is behind ADAM
    assert beats.runs == "12" and beats.ours.endswith(f"against ADAM {beats.ours.split('ADAM ')[1]}")
    assert beats.difference.startswith("−0.0") and "[" in beats.difference
    assert "holds in 2, tie in 0, fails in 1 of 3" in rows[4].ours and rows[4].runs == "3 × 12"
    assert "| 3 × 12 test runs; holds for 0 of 1 trained optimizer |" in ledger.table(rows[4:5])  # not in every one
    assert rows[5].note == "unpaired" and rows[5].difference == "–"
    text = ledger.table(rows)
    assert text.count("\n") == len(rows) + 1 and "sweep ({doc}`02_mnist`)" in text
    assert "| beats ({doc}`01_quadratics`) | ≈ 0.1 | " in text and "| 12 test runs; holds for 1 of 2 trained optimizers |" in text
    assert ledger.summary(rows).startswith("Of 7 claims, 3 hold, 1 holds in part (for some architectures), 1 is a tie (the 95% interval of the difference contains zero) and 1 fails.")
    assert "Not yet computed: missing." in ledger.summary(rows)
    status = ledger.status_table(rows).splitlines()
    assert "| {doc}`01_quadratics` | Fig. 4 (left) | 2 hold, 1 is a tie, 1 fails |" in status
    assert "| {doc}`04_cifar` | Fig. 7 | 1 holds, 1 has no results |" in status


def test_a_claim_about_a_later_step_than_a_short_run_has_uses_its_last_step_in_smoke_runs_alone(tmp_path):
    _fixture(tmp_path)  # 100-step curves, as a smoke run's are shorter than the book's
    for file in [tmp_path / "good.json", *(tmp_path / "sweep").glob("*.json")]:  # a smoke run's names
        file.with_name(f"{file.stem}-smoke.json").write_bytes(file.read_bytes())
    long, sweep = Claim("long", "–", "02_mnist", "good", 1000), Claim("sweep", "–", "02_mnist", "sweep/*", 1000)
    row = ledger.evaluate(long, tmp_path, "smoke")
    assert row.verdict == "holds" and row.difference == ledger.evaluate(
        Claim("at 100", "–", "02_mnist", "good", 100), tmp_path).difference
    for claim in (long, sweep):  # at book scale a shorter run's verdict is not the claim's
        row = ledger.evaluate(claim, tmp_path)
        assert row.verdict == "no results" and row.note.endswith("ends at step 100")


def test_a_chapter_gets_its_own_rows(tmp_path):
    _fixture(tmp_path)
    (tmp_path / "quadratic.json").write_bytes((tmp_path / "good.json").read_bytes())
    text = ledger.for_chapter("01_quadratics", tmp_path)
    assert text.count("| Quadratics") == 1 and "Of 1 claim, 1 holds." in text


def test_every_claim_points_at_a_chapter_of_the_book():
    from l2l.book.runner import NOTEBOOKS, chapters

    for claim in ledger.CLAIMS:
        assert (NOTEBOOKS / f"{claim.chapter}.ipynb").exists(), claim.chapter
    assert set(ledger.CHAPTERS) == set(chapters()) - {"intro"}
    assert len({c.claim for c in ledger.CLAIMS}) == len(ledger.CLAIMS)


def test_the_committed_results_give_a_ledger(tmp_path):
    """Whatever data/results holds, every claim gets a row and the verdicts are from the vocabulary."""
    from l2l.runtime import results_dir

    rows = ledger.ledger(ledger.CLAIMS, results_dir())
    assert {r.verdict for r in rows} <= {"holds", "partly", "tie", "fails", "no results"}


def test_the_command_line_prints_the_ledger(tmp_path, capsys):
    from l2l.cli import main

    _fixture(tmp_path)
    (tmp_path / "quadratic.json").write_bytes((tmp_path / "good.json").read_bytes())
    main(["ledger", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert "     holds  Quadratics: the LSTM ends below every tuned baseline at step 100" in out
    assert "trained optimizers holding 1 of 2" in out and "no results" in out and out.strip().splitlines()[-1].startswith("Of ")


def test_a_row_from_an_unfinished_training_says_so(tmp_path):
    """A chapter may test an optimizer whose training is still under way (its best weights so
    far); its results say how far it got, and the ledger's row carries that beside the verdict."""
    curves = _fixture(tmp_path)
    save(curves, tmp_path / "partial.json", trained=["LSTM"], unfinished="700 of 1500 epochs")
    row, done = ledger.ledger([Claim("partial", "–", "02_mnist", "partial", 100),
                               Claim("done", "–", "02_mnist", "good", 100)], tmp_path)
    assert row.verdict == "holds" and row.note == "training unfinished: 700 of 1500 epochs"
    assert done.note == ""
    assert "training unfinished: 700 of 1500 epochs" in ledger.table([row])


def test_a_recipe_s_other_seeds_count_for_its_own_claims_alone(tmp_path):
    """'holds for k of n trained optimizers' counts the claim's optimizer and its seeds (LSTM-10k
    and 'LSTM-10k seed 1'), never another recipe tested beside it in the same file."""
    curves = _fixture(tmp_path)
    renamed = {"LSTM-10k": curves["LSTM"], "LSTM-10k seed 1": curves["LSTM seed 1"], "LSTM": curves["LSTM"],
               "ADAM": curves["ADAM"], "SGD": curves["SGD"]}
    save(renamed, tmp_path / "longer.json", trained=["LSTM-10k", "LSTM-10k seed 1", "LSTM"], runs=12)
    longer, book = ledger.ledger([Claim("longer", "–", "02_mnist", "longer", 100, learned="LSTM-10k"),
                                  Claim("book", "–", "02_mnist", "longer", 100)], tmp_path)
    assert longer.trained == "1 of 2" and book.trained == "1 of 1"
    assert "holds for 1 of 1 trained optimizer |" in ledger.table([book])


def test_a_run_that_retrains_quotes_no_result_from_before_it(tmp_path, monkeypatch):
    """`make book RETRAIN=1 JOBS=2`: chapter 4 quotes chapter 2's MNIST verdict while chapter 2 may
    still be retraining; until chapter 2 has tested its new optimizer, the file holds the old one's."""

    _fixture(tmp_path)
    written = (tmp_path / "good.json").stat().st_mtime
    claims = [Claim("beats", "–", "01_quadratics", "good", 100), Claim("sweep", "–", "02_mnist", "sweep/*", 100)]
    monkeypatch.setenv(RETRAINED_SINCE, repr(written + 1))  # the run started after the files were written
    for row in ledger.ledger(claims, tmp_path):
        assert row.verdict == "no results" and row.note.endswith("from before this run's retraining")
    monkeypatch.setenv(RETRAINED_SINCE, repr(written - 1))  # written by this run
    assert [r.verdict for r in ledger.ledger(claims, tmp_path)] == ["holds", "partly"]


def test_a_sweep_tied_in_every_architecture_is_a_tie(tmp_path):
    curves = _fixture(tmp_path)
    (tmp_path / "ties").mkdir()
    for k in range(2):  # the LSTM is ADAM's curve: a tie in both
        save({**curves, "LSTM": Curve("LSTM", curves["ADAM"].mean, curves["ADAM"].ci95, None, curves["ADAM"].per_run)},
             tmp_path / "ties" / f"{k}.json")
    row = ledger.evaluate(Claim("ties", "–", "02_mnist", "ties/*", 100), tmp_path)
    assert row.verdict == "tie" and "holds in 0, tie in 2, fails in 0 of 2" in row.ours


def test_a_claim_against_its_own_start_asks_whether_each_run_made_progress(tmp_path):
    """The paper's ReLU failure is 'no progress': the loss at step 100 against the same runs' loss
    at step 0. The fixture's LSTM falls (the claim that it rises fails); a curve that climbs holds;
    each seed is judged against its own start."""
    curves = _fixture(tmp_path)
    start = torch.linspace(2.0, 2.5, 12)[:, None]
    rising = start * (1 + torch.arange(101.0) / 1000) * (1 + 0.001 * torch.randn(12, 101, generator=torch.Generator().manual_seed(5)))
    save({**curves, "LSTM seed 1": Curve.of("LSTM seed 1", rising)}, tmp_path / "relu.json", trained=["LSTM", "LSTM seed 1"])
    rises, seed = ledger.ledger([Claim("rises", "–", "03_relu", "relu", 100, against=(ledger.START,), higher=True),
                                 Claim("seed rises", "–", "03_relu", "relu", 100, learned="LSTM seed 1",
                                       against=(ledger.START,), higher=True)], tmp_path)
    assert rises.verdict == "fails" and seed.verdict == "holds"
    assert rises.trained == "1 of 2" and seed.trained == "1 of 1"  # seed 1 climbs from its own start, the LSTM does not
    fixture = curves["LSTM"]
    assert rises.ours.endswith(f"against its start {loss_text(fixture.mean[0])} ± {loss_text(fixture.ci95[0])}")
    gap = fixture.at(100) - fixture.at(0)
    assert rises.difference.startswith(signed_text(gap.mean()))


def test_a_claim_counts_baselines_retuned_for_its_step_on_the_same_runs(tmp_path):
    _fixture(tmp_path)  # in good.json the LSTM is at half ADAM's loss: the claim holds
    hard = torch.linspace(1, 2, 12)[:, None]
    retuned = Curve.of("ADAM (tuned for step 100)", hard * torch.exp(-torch.arange(101.0) / 30) * 0.25, lr=0.02)
    save({retuned.label: retuned}, tmp_path / "early.json", runs=12)  # the same runs as good.json
    plain = Claim("beats", "–", "01_quadratics", "good", 100)
    named = Claim("beats named", "–", "01_quadratics", "good", 100, against=("ADAM", "SGD"))
    assert ledger.evaluate(plain, tmp_path).verdict == "holds"
    for claim in (plain, named):
        row = ledger.evaluate(Claim(**{**claim.__dict__, "retuned": "early"}), tmp_path)
        assert row.verdict == "fails" and row.claim.retuned == "early"  # the retuned ADAM is lower still
        assert row.ours.split(" against ")[1].startswith("ADAM (tuned for step 100) ")  # the nearest now
        assert row.trained == "0 of 2"
    missing = ledger.evaluate(Claim("beats", "–", "01_quadratics", "good", 100, retuned="none"), tmp_path)
    assert missing.verdict == "no results" and "none not found" in missing.note
    absent = ledger.evaluate(Claim("beats a rival not tested here", "–", "01_quadratics", "good", 100,
                                   against=("ADAM", "LSTM, 100 epochs")), tmp_path)
    assert absent.verdict == "no results" and absent.note == "LSTM, 100 epochs not in good"
    new = ledger.evaluate(Claim("a model its chapter has not tested yet", "–", "06_ntm_bfgs", "good", 100,
                                learned="NTM-BFGS, head biases 0", against=("ADAM",)), tmp_path)
    assert new.verdict == "no results" and new.note == "NTM-BFGS, head biases 0 not in good"
    early = tmp_path / "early.json"  # a retraining run has remade good.json but not early.json yet
    os.utime(early, (early.stat().st_mtime - 10,) * 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RETRAINED_SINCE, repr(early.stat().st_mtime + 5))
        stale = ledger.evaluate(Claim("beats", "–", "01_quadratics", "good", 100, retuned="early"), tmp_path)
    assert stale.verdict == "no results" and stale.note == "early: from before this run's retraining"
    save({retuned.label: retuned}, tmp_path / "other.json", runs=20)  # other test runs: pairing would mean nothing
    with pytest.raises(ValueError, match="differ in runs"):
        ledger.evaluate(Claim("beats", "–", "01_quadratics", "good", 100, retuned="other"), tmp_path)


def test_results_files_are_named_by_problem_and_scale_and_an_empty_name_is_refused(tmp_path):
    """Chapter 4 writes its step-100 baselines under `tuned100(100, classes)`; a name of '' (what
    `tuned100` gives at other steps) must not fall back to the panel's own results file."""
    from l2l.book.presets import results_path

    assert results_path("cifar:classes=5", "book", tmp_path) == tmp_path / "cifar-classes5.json"
    assert results_path("cifar", "smoke", tmp_path, name=ledger.tuned100(100, 5)) == tmp_path / "cifar-classes5-tuned100-smoke.json"
    assert ledger.tuned100(100) == "cifar-tuned100" and ledger.tuned100(1000, 2) == ""
    with pytest.raises(ValueError, match="empty results name"):
        results_path("cifar", "book", tmp_path, name=ledger.tuned100(200))


def test_a_seed_of_one_recipe_meets_the_same_seed_of_a_learned_opponent(tmp_path):
    """'NTM seed 1 below the LSTM' is judged against 'LSTM seed 1' where the file holds it (the two
    trained on the same functions), not against the LSTM's seed 0: here seed 1 of both is far
    better than seed 0, so against seed 0 the NTM's seed 1 would hold by its seed's luck alone."""
    hard = torch.linspace(1, 2, 12)[:, None] * torch.exp(-torch.arange(101.0) / 30)
    noise = lambda seed: 1 + 0.01 * torch.randn(12, 101, generator=torch.Generator().manual_seed(seed))
    curves = {"LSTM": Curve.of("LSTM", hard * noise(0)), "LSTM seed 1": Curve.of("LSTM seed 1", hard * 0.5 * noise(1)),
              "NTM": Curve.of("NTM", hard * 1.2 * noise(2)), "NTM seed 1": Curve.of("NTM seed 1", hard * 0.6 * noise(3))}
    save(curves, tmp_path / "sharing.json", trained=["NTM", "NTM seed 1"], runs=12)
    (row,) = ledger.ledger([Claim("NTM below LSTM", "–", "06_ntm_bfgs", "sharing", 100, learned="NTM",
                                  against=("LSTM",))], tmp_path)
    assert row.verdict == "fails" and row.trained == "0 of 2"  # seed 1: 0.6 against LSTM seed 1's 0.5
    del curves["LSTM seed 1"]
    save(curves, tmp_path / "sharing.json", trained=["NTM", "NTM seed 1"], runs=12)
    (row,) = ledger.ledger([Claim("NTM below LSTM", "–", "06_ntm_bfgs", "sharing", 100, learned="NTM",
                                  against=("LSTM",))], tmp_path)
    assert row.trained == "1 of 2"  # without the LSTM's seed 1, against the LSTM itself


def test_a_sweep_counts_each_training_and_those_it_holds_for_in_every_architecture(tmp_path):
    """Fig. 6 with three trainings: each is judged in every file; "k of n" counts those below in all."""
    curves = _fixture(tmp_path)  # LSTM below ADAM and SGD; LSTM seed 1 behind
    (tmp_path / "seeds").mkdir()
    for k in range(2):
        losses = torch.linspace(1, 2, 12)[:, None] * torch.exp(-torch.arange(101.0) / 30) * (0.5 if k else 3.0)
        save({**curves, "LSTM seed 2": Curve.of("LSTM seed 2", losses)},
             tmp_path / "seeds" / f"{k}.json", trained=["LSTM", "LSTM seed 1", "LSTM seed 2"], runs=12)
    row = ledger.evaluate(Claim("seeds", "–", "02_mnist", "seeds/*", 100), tmp_path)
    assert row.verdict == "holds" and row.trained == "1 of 3"
    assert row.ours == ("holds in 2, tie in 0, fails in 0 of 2 architectures; LSTM seed 1: holds in 0, tie in 0, "
                        "fails in 2; LSTM seed 2: holds in 1, tie in 0, fails in 1")
    # a claim about another recipe in the same files counts that recipe's trainings alone
    seed2 = ledger.evaluate(Claim("seed 2", "–", "02_mnist", "seeds/*", 100, learned="LSTM seed 2"), tmp_path)
    assert seed2.verdict == "partly" and seed2.trained == "0 of 1"
