"""The claims ledger: one row per claim of the paper (and of the book), computed from `data/results/`.

Each `Claim` names the results file(s) a chapter wrote, the learned optimizer, the step and what
it is compared with. Its verdict comes from paired differences over the same test runs
(`l2l.evaluation.versus`): the claim "A is lower than every one of B" holds when every paired
interval lies below zero, fails when any lies above, and is a tie otherwise; a claim that A is
*higher* (behind the baselines, or above its own start: the ReLU failure) mirrors that. Curves
computed before per-run numbers were kept fall back to comparing intervals, and the row says
"unpaired". Nothing here is typed by hand but the claims themselves and the paper's values,
marked ≈ where read off a figure.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, replace
from pathlib import Path

from l2l.book.presets import SECOND_SEARCH, results_path, seed_suffix, test_settings
from l2l.book.report import listed, loss_text, paired_text
from l2l.evaluation import Curve, Paired, beats_all, load, start_of, unpaired, versus
from l2l.training.meta_train import before_this_run

FLIP = {"holds": "fails", "fails": "holds", "tie": "tie"}
START = "its start"  # a claim's opponent: the learned optimizer's own loss at step 0 (`evaluation.start_of`)


@dataclass(frozen=True)
class Claim:
    """One claim: `learned` is lower (or, with higher=True, higher) than each of `against` at `step`
    in the curves of `results` (a result's name in data/results/, as `presets.results_path` names it
    at the book scale, without .json; or a glob: one verdict per file).

    against: labels; () means every tuned baseline in the file (curves with a learning rate); START
        means the learned optimizer's own loss at step 0, run by run (did it make progress?).
    retuned: a result holding the same baselines tuned for this claim's step, on the same test runs
        (where `results`' were tuned for a longer horizon): they count among the opponents too.
    """

    claim: str
    paper: str
    chapter: str
    results: str
    step: int
    learned: str = "LSTM"
    against: tuple[str, ...] = ()
    higher: bool = False
    retuned: str = ""


@dataclass(frozen=True)
class Row:
    claim: Claim
    ours: str  # the learned optimizer's mean ± 95% interval, and the nearest opponent's
    difference: str  # learned − nearest opponent, paired, with its interval
    verdict: str  # holds, tie, fails; partly (some files of a sweep); "no results" when not yet written
    runs: str  # test runs behind the verdict
    trained: str  # how many independently trained optimizers the claim holds for
    note: str = ""


def _opponents(curves: dict[str, Curve], claim: Claim, learned: str) -> dict[str, Curve]:
    """What `learned` is judged against: the claim's `against` (else every tuned baseline). Against a
    learned opponent, another seed of a recipe ("NTM-BFGS seed 1") meets the opponent's training with
    the same seed ("LSTM seed 1") where the results hold it: two recipes trained on the same
    functions pair, and a seed's luck is not credited to the architecture."""
    labels = claim.against or tuple(k for k, c in curves.items() if c.lr is not None)
    return {k: start_of(curves[learned]) if k == START else
            curves[same_seed(k, learned, curves) if curves[k].lr is None else k]
            for k in labels if k in curves or k == START}


def same_seed(opponent: str, learned: str, labels) -> str:
    """`opponent`'s training with `learned`'s seed ("LSTM seed 1" for "NTM-BFGS seed 1") where
    `labels` hold it, else `opponent` itself (seed 0 has no suffix)."""
    suffix = seed_suffix(learned)
    return opponent + suffix if suffix and opponent + suffix in labels else opponent


def step_of(claim: Claim, curve: Curve) -> int:
    """The step a claim is about, or the curve's last step when it is shorter (smoke runs: `short`)."""
    return curve.steps if claim.step == -1 or claim.step > curve.steps else claim.step


def short(claim: Claim, curve: Curve, scale: str) -> Row | None:
    """At book scale, a curve that ends before the claim's step answers nothing (a shorter run's
    verdict is not the claim's); smoke runs are short by design and give their last step's."""
    if scale == "smoke" or claim.step <= curve.steps:
        return None
    return Row(claim, "–", "–", "no results", "–", "–", f"{claim.results} ends at step {curve.steps}")


def verdict_of(curves: dict[str, Curve], label: str, claim: Claim) -> tuple[str, dict[str, Paired] | None]:
    """The claim's verdict for one learned curve, and its paired comparisons (None: unpaired)."""
    step = step_of(claim, curves[label])
    opponents = _opponents(curves, claim, label)
    if any(c.per_run is None for c in (curves[label], *opponents.values())):
        verdicts = {k: unpaired(curves[label], c, step) for k, c in opponents.items()}
        comparisons = None
    else:
        comparisons = versus({label: curves[label], **opponents}, label, step)
        verdicts = {k: p.verdict for k, p in comparisons.items()}
    if claim.higher:
        verdicts = {k: FLIP[v] for k, v in verdicts.items()}
    return beats_all(verdicts.values()), comparisons


def evaluate(claim: Claim, results: str | Path, scale: str = "book") -> Row:
    """The ledger row of one claim, from the results folder (of a run at `scale`)."""
    files = sorted(glob.glob(str(results_path("", scale, results, name=claim.results))))
    if row := _unread(claim, claim.results, files):
        return row
    if len(files) > 1:
        return _sweep(claim, files, scale)
    curves, meta = load(files[0])
    absent = [k for k in (claim.learned, *(claim.against or ())) if k != START and k not in curves]
    missing = Row(claim, "–", "–", "no results", "–", "–", f"{', '.join(absent)} not in {claim.results}")
    if claim.learned in absent:  # e.g. a chapter's new optimizer, before the chapter has run again
        return missing
    me = curves[claim.learned]
    if row := short(claim, me, scale):
        return row
    if absent:  # e.g. a rival trained at book scale only
        return missing
    asked = claim  # the row names the claim as asked; with `retuned`, it is judged against those baselines too
    if claim.retuned:
        retuned = _retuned(claim, meta, results, scale)
        if isinstance(retuned, Row):
            return retuned
        curves |= retuned
        claim = replace(claim, against=claim.against + tuple(retuned)) if claim.against else claim
    step = step_of(claim, me)
    verdict, comparisons = verdict_of(curves, claim.learned, claim)
    opponents = _opponents(curves, claim, claim.learned)
    nearest = min(opponents, key=lambda k: opponents[k].mean[step]) if not claim.higher else \
        max(opponents, key=lambda k: opponents[k].mean[step])
    ours = (f"{loss_text(me.mean[step])} ± {loss_text(me.ci95[step])} against {nearest} "
            f"{loss_text(opponents[nearest].mean[step])} ± {loss_text(opponents[nearest].ci95[step])}")
    difference = paired_text(comparisons[nearest]) if comparisons else "–"
    runs = str(me.runs or meta.get("runs", "?"))
    trained = trainings(meta, claim.learned)
    held = sum(verdict_of(curves, label, claim)[0] == "holds" for label in trained if label in curves)
    note = "; ".join(filter(None, ["" if comparisons else "unpaired",
                                   f"training unfinished: {meta['unfinished']}" if meta.get("unfinished") else ""]))
    return Row(asked, ours, difference, verdict, runs, f"{held} of {len(trained)}", note)


def trainings(meta: dict, learned: str) -> list[str]:
    """The independently trained optimizers a results file holds for a claim about `learned`: it and
    its other seeds ("LSTM seed 1"), as the file's `trained` names them, else `learned` alone."""
    return [label for label in meta.get("trained", [])
            if label.removesuffix(seed_suffix(label)) == learned] or [learned]


def _unread(claim: Claim, name: str, files: list) -> Row | None:
    """The row of a claim whose results `name` (its `files`) cannot be read yet: none found, or one
    from before this run's retraining (another chapter has not tested its new optimizer yet)."""
    if not files:
        return Row(claim, "–", "–", "no results", "–", "–", f"{name} not found")
    if any(map(before_this_run, files)):
        return Row(claim, "–", "–", "no results", "–", "–", f"{name}: from before this run's retraining")
    return None


def _retuned(claim: Claim, meta: dict, results: str | Path, scale: str) -> dict[str, Curve] | Row:
    """The baselines of `claim.retuned`, tuned for the claim's step, or the row saying they are
    missing; they must have run on the claim's test runs (the same problem, runs and seed), or
    pairing them with its learned optimizer run by run would mean nothing."""
    path = results_path("", scale, results, name=claim.retuned)
    if row := _unread(claim, claim.retuned, [path] if path.exists() else []):
        return row
    curves, theirs = load(path)
    differ = [k for k in ("problem", "runs", "seed") if theirs.get(k) != meta.get(k)]
    if differ:
        raise ValueError(f"{claim.retuned} and {claim.results} differ in {', '.join(differ)}: "
                         "their curves are not on the same test runs")
    return {k: c for k, c in curves.items() if c.lr is not None}


def _sweep(claim: Claim, files: list[str], scale: str) -> Row:
    """A claim over several files (an architecture sweep): in how many of them it holds, for the
    claim's optimizer and for each of its other trainings the files hold (`trainings`); a training
    counts among the "k of n" that the claim holds for when it holds in every file."""
    tally, runs = {}, set()  # training → its verdict in each file
    for file in files:
        curves, meta = load(file)
        if claim.learned not in curves:
            return Row(claim, "–", "–", "no results", "–", "–", f"{claim.learned} not in {Path(file).name}")
        if row := short(claim, curves[claim.learned], scale):
            return row
        for label in trainings(meta, claim.learned):
            if label in curves:
                tally.setdefault(label, []).append(verdict_of(curves, label, claim)[0])
        runs.add(curves[claim.learned].runs or meta.get("runs", "?"))
    counts = {label: (v.count("holds"), v.count("tie"), v.count("fails")) for label, v in tally.items()}
    held, tied, failed = counts.pop(claim.learned)
    verdict = ("holds" if held == len(files) else "partly" if held else "fails" if failed else "tie")
    ours = f"holds in {held}, tie in {tied}, fails in {failed} of {len(files)} architectures" + "".join(
        f"; {label}: holds in {h}, tie in {t}, fails in {f}" for label, (h, t, f) in counts.items())
    everywhere = sum(v.count("holds") == len(files) for v in tally.values())
    each = "/".join(map(str, sorted(runs)))
    return Row(claim, ours, "–", verdict, f"{len(files)} × {each}", f"{everywhere} of {len(tally)}")


def ledger(claims: list[Claim], results: str | Path, scale: str = "book") -> list[Row]:
    return [evaluate(claim, results, scale) for claim in claims]


def table(rows: list[Row], link=lambda chapter: f"{{doc}}`{chapter}`") -> str:
    """The ledger as a Markdown table, five columns to fit the book's page."""
    lines = ["| claim | the paper | ours: mean ± 95% interval; paired difference | verdict | behind it |",
             "| --- | --- | --- | :---: | --- |"]
    for r in rows:
        verdict = f"**{r.verdict}**" + (f" ({r.note})" if r.note else "")
        ours = r.ours if r.difference == "–" else f"{r.ours}; {r.difference}"
        behind = "–" if r.runs == "–" else f"{r.runs} test runs" + (
            f"; holds for {r.trained} trained optimizer{'' if r.trained.endswith(' 1') else 's'}"
            if r.trained != "–" else "")
        lines.append(f"| {r.claim.claim} ({link(r.claim.chapter)}) | {r.claim.paper} | {ours} | {verdict} | {behind} |")
    return "\n".join(lines)


# each verdict as a count of claims words it: (one claim, several); the summary and the introduction's table
VERBS = {"holds": ("holds", "hold"), "partly": ("holds in part", "hold in part"), "tie": ("is a tie", "are ties"),
         "fails": ("fails", "fail"), "no results": ("has no results", "have no results")}


def counted(n: int, verdict: str) -> str:
    """'3 hold', '1 is a tie'."""
    return f"{n} {VERBS[verdict][n != 1]}"


def summary(rows: list[Row]) -> str:
    """One sentence: how many claims hold, tie and fail, naming those that do not hold."""
    count = {v: [r.claim.claim for r in rows if r.verdict == v] for v in VERBS}
    n = {v: len(k) for v, k in count.items()}
    why = {"partly": " (for some architectures)", "tie": " (the 95% interval of the difference contains zero)"}
    said = [counted(n[v], v) + why.get(v, "") for v in ("holds", "partly", "tie", "fails") if n[v]]
    said = said or ["none has results yet"]
    text = f"Of {len(rows)} claim{'' if len(rows) == 1 else 's'}, {listed(said)}"
    parts = [f"fail: {'; '.join(count['fails'])}" if count["fails"] else "",
             f"in part: {'; '.join(count['partly'])}" if count["partly"] else "",
             f"ties: {'; '.join(count['tie'])}" if count["tie"] else "",
             f"not yet computed: {'; '.join(count['no results'])}" if count["no results"] else ""]
    return text + "." + "".join(f" {p[0].upper() + p[1:]}." for p in parts if p)


def trained_for(label: str, epochs: int) -> str:
    """`label`'s recipe meta-trained for a budget of `epochs` epochs in all ("LSTM, 1,600 epochs"; chapter
    6's "LSTM+GAC, 500 epochs": 400 more from its 100-epoch training's best weights). A seed's label
    adds its suffix after this one ("LSTM, 100 epochs seed 1"), as `seed_suffix` reads it."""
    return f"{label}, {epochs:,} epochs"


NO_BENCHMARK = "Appendix: architecture only, no benchmark"
CHEN = "LSTM-Chen"  # the MNIST LSTM trained with Chen et al.'s curriculum and imitation (chapter 2)
IMITATION = "LSTM + imitation"  # the MNIST LSTM trained with Chen et al.'s imitation alone (chapter 2)
SEARCHED = "LSTM-searched"  # the MNIST LSTM whose meta-learning rate the paper's random search chose (chapter 2)
SEARCHED_IMITATION = "LSTM-searched + imitation"  # LSTM-searched's recipe with Chen et al.'s imitation (chapter 2)
LONGER = "LSTM-10k"  # LSTM-searched's recipe trained for the official code's 10,000 epochs (chapter 2)
SECOND = "LSTM, second search"  # the winner of chapter 2's second random search, over higher meta-learning rates
SCALED = "LSTM, conv × 0.01"  # the CIFAR LSTM with its convolutional LSTM's outputs scaled by 0.01 (chapter 4)
MNIST_RATE = "LSTM, MNIST's meta-lr"  # the CIFAR LSTM trained at the meta-learning rate the MNIST search chose (chapter 4)
BOTH = "LSTM, both changes"  # the CIFAR LSTM with both of chapter 4's changes
LONG_BOTH = trained_for(BOTH, 2000)  # BOTH's recipe trained for 2,000 epochs (chapter 4)
KERNELS = "LSTM, both changes, official grouping"  # BOTH's recipe with the official code's parameter groups (chapter 4)
RUNS4 = "LSTM, both changes, 4 functions per update"  # BOTH's recipe averaging 4 functions per meta-update (chapter 4)
IMITATING = "LSTM, both changes, imitating ADAM"  # BOTH's recipe with Chen et al.'s imitation of a tuned ADAM (chapter 4)
CURRICULUM = "LSTM, both changes, curriculum"  # BOTH's recipe with Chen et al.'s curriculum over horizons (chapter 4)
SUB_BOTH = "LSTM-sub, both changes"  # LSTM-sub (the last five labels) with both of chapter 4's changes
LONG_ART = trained_for("LSTM", 1600)  # the neural-art LSTM's recipe trained for twice its epochs (chapter 5)
PATIENT = "LSTM, until validation stops"  # the neural-art LSTM trained until validation stopped improving (chapter 5)
PLATEAU = "LSTM, rate halved at plateaus"  # the neural-art LSTM whose meta-learning rate halves when validation stalls (chapter 5)
READ_ZERO = "NTM-L-BFGS, read bias 0"  # NTM-L-BFGS with its read key's bias started at zero (chapter 6)


def head_zero(model: str) -> str:
    """A memory model's recipe with its read key's and update channel's biases started at zero
    (chapter 6: "NTM-BFGS, head biases 0")."""
    return f"{model}, head biases 0"


HEAD_ZERO = head_zero("NTM-L-BFGS")  # the MNIST recipe that learns (chapter 6)


_NTM = test_settings("mnist", "book")  # chapter 6's MNIST budgets: ntm_epochs, then ntm_more_epochs more
BRIEF = trained_for("LSTM", _NTM["ntm_epochs"])  # chapter 2's LSTM on the short recipe of chapter 6's MNIST models
LONG_EPOCHS = _NTM["ntm_epochs"] + _NTM["ntm_more_epochs"]  # those trainings, then more from their best weights


def tuned100(step: int, classes: int = 10) -> str:
    """A CIFAR claim's `retuned`: chapter 4 tunes its baselines for step 200, and at step 100 a claim
    on the panel of `classes` classes also counts them tuned for step 100, on that panel's test runs
    (chapter 4 writes the file under this name); '' at other steps."""
    return f"cifar{'' if classes == 10 else f'-classes{classes}'}-tuned100" if step == 100 else ""


# The paper's claims, and the book's own. Paper values marked ≈ are read off its figures.
CLAIMS = [
    Claim("Quadratics: the LSTM ends below every tuned baseline at step 100",
          "Fig. 4 left: LSTM ≈ 0.04, RMSprop ≈ 0.05, ADAM ≈ 0.055, NAG ≈ 0.075, SGD ≈ 0.2",
          "01_quadratics", "quadratic", 100),
    Claim("MNIST 784-20-10: below every tuned baseline at step 100",
          "Fig. 4 centre: LSTM ≈ 0.2–0.25; NAG, ADAM, RMSprop ≈ 0.3–0.35; SGD ≈ 0.5",
          "02_mnist", "mnist", 100),
    Claim("MNIST 784-20-10: still below at step 200 (trained for 100)",
          "Fig. 4 right: the LSTM stays ahead (no value read)", "02_mnist", "mnist", 200),
    Claim("MNIST, 40 hidden units (not trained on): below every tuned baseline at step 100",
          "Fig. 5 left: the LSTM ends lowest", "02_mnist", "mnist-hidden40", 100),
    Claim("MNIST, two hidden layers (not trained on): below every tuned baseline at step 100",
          "Fig. 5 centre: the LSTM ends lowest", "02_mnist", "mnist-layers2", 100),
    *(Claim(f"MNIST 784-20-10, meta-learning rate by the paper's random search: below every tuned baseline at step "
            f"{step}", paper, "02_mnist", "mnist-searched", step, learned=SEARCHED, against=("SGD", "RMSprop", "ADAM", "NAG"))
      for step, paper in ((100, "Fig. 4 centre, the paper's protocol (section 3: random search)"),
                          (200, "Fig. 4 right, the paper's protocol (section 3: random search)"))),
    *(Claim(f"MNIST 784-20-10, meta-learning rate by a second random search, over [{SECOND_SEARCH['low']:g}, "
            f"{SECOND_SEARCH['high']:g}]: below every tuned baseline at step {step}", paper, "02_mnist",
            "mnist-searched-second", step, learned=SECOND, against=("SGD", "RMSprop", "ADAM", "NAG"))
      for step, paper in ((100, "Fig. 4 centre, the paper's protocol over higher meta-learning rates"),
                          (200, "Fig. 4 right, the paper's protocol over higher meta-learning rates"))),
    *(Claim(f"MNIST 784-20-10, the searched recipe at the official code's budget (10,000 epochs): below every "
            f"tuned baseline at step {step}", paper, "02_mnist", "mnist-official", step, learned=LONGER,
            against=("SGD", "RMSprop", "ADAM", "NAG"))
      for step, paper in ((100, "Fig. 4 centre, the paper's protocol at the official code's 10,000 epochs"),
                          (200, "Fig. 4 right, the paper's protocol at the official code's 10,000 epochs"))),
    Claim("MNIST width and depth sweep: below tuned ADAM and NAG at step 100",
          "Fig. 6: the LSTM generalizes near its training architecture", "02_mnist",
          "mnist-sweep/*", 100, against=("ADAM", "NAG")),
    Claim("MNIST width and depth sweep, the searched recipe at the official code's budget (10,000 epochs): below "
          "tuned ADAM and NAG at step 100", "Fig. 6, the paper's protocol at the official code's 10,000 epochs",
          "02_mnist", "mnist-sweep-official/*", 100, learned=LONGER, against=("ADAM", "NAG")),
    Claim("MNIST with ReLU: the sigmoid-trained LSTM makes no progress: at step 100 its loss is above where each "
          "run started", "Fig. 5 right: LSTM ≈ 2.3 (ln 10, chance, where training starts) and rising", "03_relu",
          "mnist-activationrelu", 100, against=(START,), higher=True),
    Claim("MNIST with ReLU: the sigmoid-trained LSTM is behind every tuned baseline at step 100",
          "Fig. 5 right: LSTM ≈ 2.3; baselines ≈ 0.3–0.4", "03_relu",
          "mnist-activationrelu", 100, against=("SGD", "RMSprop", "ADAM", "NAG"), higher=True),
    Claim("CIFAR-10: the LSTM below every tuned baseline early (step 100)",
          "Fig. 7 left: the LSTM learns much faster early; NAG catches up after ≈ 500 steps",
          "04_cifar", "cifar", 100, retuned=tuned100(100)),
    Claim("CIFAR-5: the LSTM below every tuned baseline at step 1,000",
          "Fig. 7 centre: the LSTM stays ahead", "04_cifar", "cifar-classes5", 1000),
    Claim("CIFAR-2: the LSTM below every tuned baseline at step 1,000",
          "Fig. 7 right: the LSTM stays ahead", "04_cifar", "cifar-classes2", 1000),
    Claim("CIFAR-5: LSTM-sub (trained on the other labels) below every tuned baseline at step 1,000",
          "Fig. 7 centre: LSTM-sub transfers almost as well", "04_cifar", "cifar-classes5", 1000,
          learned="LSTM-sub", against=("SGD", "RMSprop", "ADAM", "NAG")),
    Claim("CIFAR-10, at the meta-learning rate the paper's random search chose on MNIST: the LSTM below every "
          "tuned baseline early (step 100)", "Fig. 7 left, the paper's protocol (section 3: random search)",
          "04_cifar", "cifar-mnist-rate", 100, learned=MNIST_RATE, against=("SGD", "RMSprop", "ADAM", "NAG"),
          retuned=tuned100(100)),
    Claim("Neural art, training style, 64×64: below every tuned baseline at step 128",
          "Fig. 8 left: the LSTM below all baselines", "05_neural_art", "neural_art", 128),
    Claim("Neural art, new style at 128×128: below every tuned baseline at step 128",
          "Fig. 8 right: the LSTM below all baselines", "05_neural_art",
          "neural_art-size128-stylegreat_wave", 128),
    *(Claim(f"Quadratics: {model} below the coordinatewise LSTM at step 100", NO_BENCHMARK, "06_ntm_bfgs",
            "quadratic-sharing", 100, learned=model, against=("LSTM",))
      for model in ("LSTM+GAC", "NTM-BFGS", "NTM-L-BFGS")),
    *(Claim(f"Quadratics: {model} with its read key's and update channel's biases started at zero below the "
            f"coordinatewise LSTM at step 100", NO_BENCHMARK, "06_ntm_bfgs", "quadratic-sharing-start",
            100, learned=head_zero(model), against=("LSTM",))
      for model in ("NTM-BFGS", "NTM-L-BFGS")),
    Claim("MNIST: NTM-L-BFGS below the coordinatewise LSTM at step 100", NO_BENCHMARK, "06_ntm_bfgs", "mnist-ntm-lbfgs", 100,
          learned="NTM-L-BFGS", against=("LSTM",)),
    Claim(f"MNIST: NTM-L-BFGS below the coordinatewise LSTM trained as briefly ({_NTM['ntm_epochs']} epochs) at step "
          "100", NO_BENCHMARK, "06_ntm_bfgs", "mnist-ntm-lbfgs", 100, learned="NTM-L-BFGS", against=(BRIEF,)),
    Claim("MNIST: LSTM+GAC (NTM-L-BFGS's controller, no memory) below the coordinatewise LSTM trained as briefly "
          f"({_NTM['ntm_epochs']} epochs) at step 100", NO_BENCHMARK, "06_ntm_bfgs", "mnist-ntm-lbfgs", 100,
          learned="LSTM+GAC", against=(BRIEF,)),
    Claim("MNIST: NTM-L-BFGS with its read key's bias started at zero below the coordinatewise LSTM trained as "
          f"briefly ({_NTM['ntm_epochs']} epochs) at step 100", NO_BENCHMARK, "06_ntm_bfgs", "mnist-ntm-lbfgs", 100,
          learned=READ_ZERO, against=(BRIEF,)),
    Claim("MNIST: NTM-L-BFGS with its read key's and update channel's biases started at zero below the "
          f"coordinatewise LSTM trained as briefly ({_NTM['ntm_epochs']} epochs) at step 100", NO_BENCHMARK,
          "06_ntm_bfgs", "mnist-ntm-lbfgs", 100, learned=HEAD_ZERO, against=(BRIEF,)),
    *(Claim(f"MNIST: NTM-L-BFGS with its read key's and update channel's biases started at zero, trained "
            f"{_NTM['ntm_more_epochs']:,} epochs more from its best weights ({LONG_EPOCHS:,} in all), below {rival} "
            f"trained the same way at step 100", NO_BENCHMARK, "06_ntm_bfgs", "mnist-ntm-lbfgs-longer", 100,
            learned=trained_for(HEAD_ZERO, LONG_EPOCHS),
            against=(trained_for(label, LONG_EPOCHS),))
      for label, rival in (("LSTM", "the coordinatewise LSTM"),
                           ("LSTM+GAC", "LSTM+GAC (its controller without the memory)"))),
    Claim("Book: far past its horizon (step 1,000) the MNIST LSTM is behind every tuned baseline",
          "not in the paper (Chen et al. 2020 report divergence)", "02_mnist", "mnist-long", 1000,
          higher=True),
    Claim("Book: an LSTM trained on a sigmoid/ReLU mix is below every tuned baseline on ReLU at step 100",
          "not in the paper (remedy after Lv et al. 2017)", "03_relu", "mnist-activationrelu", 100,
          learned="LSTM-mix", against=("SGD", "RMSprop", "ADAM", "NAG")),
    *(Claim(f"Book: with Chen et al.'s curriculum and imitation, the MNIST LSTM is below every tuned baseline "
            f"at step {step:,}", "not in the paper (Chen et al. 2020: far below ADAM over thousands of steps)",
            "02_mnist", results, step, learned=CHEN, against=("SGD", "RMSprop", "ADAM", "NAG"))
      for results, step in (("mnist-chen", 100), ("mnist-chen", 200), ("mnist-chen-long", 1000))),
    *(Claim(f"Book: with imitation of a tuned ADAM alone (Chen et al.'s second ingredient), the MNIST LSTM is below "
            f"every tuned baseline at step {step}", "not in the paper (Chen et al. 2020)", "02_mnist",
            "mnist-ingredients", step, learned=IMITATION, against=("SGD", "RMSprop", "ADAM", "NAG"))
      for step in (100, 200)),
    *(Claim(f"Book: at the searched meta-learning rate and with imitation of a tuned ADAM, the MNIST LSTM is below "
            f"every tuned baseline at step {step}", "not in the paper (the paper's protocol with Chen et al.'s imitation)",
            "02_mnist", "mnist-searched-imitation", step, learned=SEARCHED_IMITATION,
            against=("SGD", "RMSprop", "ADAM", "NAG"))
      for step in (100, 200)),
    *(Claim(f"Book: with its convolutional LSTM's steps scaled by 0.01, the CIFAR-10 LSTM is below every tuned "
            f"baseline at step {step:,}", "not in the paper (the official code scales every step by 0.01)",
            "04_cifar", "cifar-scales", step, learned=SCALED, against=("SGD", "RMSprop", "ADAM", "NAG"),
            retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: at the searched meta-learning rate and with its convolutional LSTM's steps scaled by 0.01, the "
            f"CIFAR-10 LSTM is below every tuned baseline at step {step:,}", "not in the paper (both of chapter 4's "
            "changes)", "04_cifar", "cifar-both", step, learned=BOTH, against=("SGD", "RMSprop", "ADAM", "NAG"),
            retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: at the searched meta-learning rate and with its convolutional LSTM's steps scaled by 0.01, the "
            f"CIFAR-10 LSTM is below every tuned baseline on {panel} at step {step:,}",
            f"not in the paper (both of chapter 4's changes; Fig. 7 {where}: the paper's LSTM "
            + ("learns much faster early)" if step == 100 else "stays ahead)"),
            "04_cifar", f"cifar-both-classes{classes}", step, learned=BOTH, against=("SGD", "RMSprop", "ADAM", "NAG"),
            retuned=tuned100(step, classes))
      for classes, panel, where in ((5, "CIFAR-5", "centre"), (2, "CIFAR-2", "right")) for step in (100, 1000)),
    *(Claim(f"Book: at the searched meta-learning rate, with its convolutional LSTM's steps scaled by 0.01 and trained "
            f"for 2,000 epochs, the CIFAR-10 LSTM is below every tuned baseline at step {step:,}",
            "not in the paper (Fig. 7 left; the official code trains 10,000 epochs)",
            "04_cifar", "cifar-both-longer", step, learned=LONG_BOTH, against=("SGD", "RMSprop", "ADAM", "NAG"),
            retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: with both changes and the official code's grouping (only the kernels to the convolutional LSTM), "
            f"the CIFAR-10 LSTM is below every tuned baseline at step {step:,}",
            "not in the paper (Fig. 7 left; the official code's cifar-multi grouping)", "04_cifar", "cifar-both-kernels",
            step, learned=KERNELS, against=("SGD", "RMSprop", "ADAM", "NAG"), retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: with both changes and four functions per meta-update, the CIFAR-10 LSTM is below every tuned "
            f"baseline at step {step:,}", "not in the paper (Fig. 7 left; the paper does not say how many functions "
            "each meta-update averages)", "04_cifar", "cifar-both-runs4", step, learned=RUNS4,
            against=("SGD", "RMSprop", "ADAM", "NAG"), retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: with both changes and imitation of a tuned ADAM (Chen et al.'s second ingredient), the CIFAR-10 "
            f"LSTM is below every tuned baseline at step {step:,}", "not in the paper (Fig. 7 left; Chen et al. 2020)",
            "04_cifar", "cifar-both-imitation", step, learned=IMITATING, against=("SGD", "RMSprop", "ADAM", "NAG"),
            retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: with both changes and a curriculum over horizons (Chen et al.'s first ingredient: stages of 100, "
            f"200, 500 and 1,000 steps; chapter 4 prints those its best weights trained on), the CIFAR-10 LSTM is below every tuned baseline at step {step:,}",
            "not in the paper (Fig. 7 left; Chen et al. 2020)", "04_cifar", "cifar-both-curriculum", step,
            learned=CURRICULUM, against=("SGD", "RMSprop", "ADAM", "NAG"), retuned=tuned100(step))
      for step in (100, 1000)),
    *(Claim(f"Book: with both changes, LSTM-sub (trained on the other labels) is below every tuned baseline on "
            f"{panel} at step {step:,}", f"not in the paper (Fig. 7 {where}: LSTM-sub "
            + ("learns much faster early)" if step == 100 else "stays ahead, almost as well as the LSTM)"),
            "04_cifar", f"cifar-sub-both-classes{classes}", step, learned=SUB_BOTH,
            against=("SGD", "RMSprop", "ADAM", "NAG"), retuned=tuned100(step, classes))
      for classes, panel, where in ((5, "CIFAR-5", "centre"), (2, "CIFAR-2", "right")) for step in (100, 1000)),
    *(Claim(f"Book: {how}, the neural-art LSTM is below every tuned baseline {where} at step 128",
            f"not in the paper (Fig. 8 {side}; {paper})", "05_neural_art", f"{results}-{suffix}", 128, learned=label,
            against=("SGD", "RMSprop", "ADAM", "NAG"))
      for label, how, suffix, paper in (
          (LONG_ART, "trained for 1,600 epochs", "longer", "the paper states no training budget for it"),
          (PATIENT, "trained until validation stops improving", "patience",
           "the paper keeps its best validation weights; this stopping rule is ours"),
          (PLATEAU, "with its meta-learning rate halved whenever validation stops improving", "plateau",
           "the paper keeps its best validation weights; halving the rate at plateaus is ours"))
      for where, side, results in (("with the training style at 64×64", "left", "neural_art"),
                                   ("with a new style at 128×128", "right", "neural_art-size128-stylegreat_wave"))),
]


# The book's chapters and the paper's figures each replicates (the introduction's table).
CHAPTERS = {
    "00_claims": "–",
    "01_quadratics": "Fig. 4 (left)",
    "02_mnist": "Fig. 4 (centre, right), 5 (left, centre), 6",
    "03_relu": "Fig. 5 (right)",
    "04_cifar": "Fig. 7",
    "05_neural_art": "Figs. 8, 9, Appendix B",
    "06_ntm_bfgs": "Appendix (no public code)",
    "07_own_model": "– (beyond the paper: a trained optimizer on your own model)",
    "90_speed": "– (speed: CPU here; GPU on one H100, populations on one H200)",
}


def status_table(rows: list[Row], link=lambda chapter: f"{{doc}}`{chapter}`") -> str:
    """Per chapter: the paper's figures and how its claims fare (the introduction's table)."""
    lines = ["| chapter | paper | claims: verdicts |", "| --- | --- | --- |"]
    for chapter, figures in CHAPTERS.items():
        mine = [r.verdict for r in rows if r.claim.chapter == chapter]
        counts = ", ".join(counted(mine.count(v), v) for v in VERBS if v in mine) if mine else "–"
        lines.append(f"| {link(chapter)} | {figures} | {counts} |")
    return "\n".join(lines)


def for_chapter(chapter: str, results: str | Path, scale: str = "book") -> str:
    """A chapter's closing verdicts: its rows of the ledger, as a table and in words."""
    rows = ledger([c for c in CLAIMS if c.chapter == chapter], results, scale)
    return table(rows, link=lambda _: "ledger: {doc}`00_claims`") + "\n\n" + summary(rows)
