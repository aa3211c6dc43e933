"""What a chapter prints besides its figures: tables of results and the sentences under them.
(Where and how long things ran: `l2l.runtime.hardware`.)"""

from __future__ import annotations

import math
import re

import numpy as np

from l2l.evaluation import Curve, Paired, beats_all, paired, unpaired, versus
from l2l.runtime import cpu_of
from l2l.training.checkpoint import validated
from l2l.training.meta_train import finished


def loss_text(x: float) -> str:
    """A loss for a table or sentence: three decimals, or two significant digits below 0.01 (so
    that the small losses of easy problems do not all read 0.000)."""
    return f"{x:.3f}" if x == 0 or abs(x) >= 0.01 else f"{x:.2g}"


def final_table(curves: dict[str, Curve], paper: dict[str, float] | None = None,
                steps: tuple[int, ...] | None = None) -> str:
    """A Markdown table: tuned learning rate, mean loss ± 95% interval at chosen steps (default
    the last), and the paper's approximate value when given."""
    steps = steps or (len(next(iter(curves.values())).mean) - 1,)
    head = "| optimizer | learning rate | " + " | ".join(f"loss at step {s}" for s in steps) + " |"
    rule = "| --- | ---: | " + " | ".join("---:" for _ in steps) + " |"
    if paper:
        head, rule = head + " paper (≈) |", rule + " ---: |"
    lines = [head, rule]
    for label, c in curves.items():
        lr = "–" if c.lr is None else f"{c.lr:.3g}"
        cells = " | ".join(f"{loss_text(c.mean[s])} ± {loss_text(c.ci95[s])}" for s in steps)
        row = f"| {label} | {lr} | {cells} |"
        if paper:
            row += f" {paper.get(label, '–')} |"
        lines.append(row)
    return "\n".join(lines)


WORDS = {"holds": "ahead of", "tie": "level with", "fails": "behind"}


def paired_text(p: Paired) -> str:
    """A paired difference for a table: +0.023 [+0.010, +0.036] (or the sign test's verdict)."""
    if p.low != p.low:  # NaN: no interval (a sign test, or a single run)
        return f"{p.verdict} ({p.method})"
    return f"{signed_text(p.diff)} [{signed_text(p.low)}, {signed_text(p.high)}]"


def signed_text(x: float) -> str:
    """A loss difference with its sign: +0.023, −0.0041."""
    return ("+" if x >= 0 else "−") + loss_text(abs(x))


def paired_table(curves: dict[str, Curve], learned: str = "LSTM", steps: tuple[int, ...] = (-1,)) -> str:
    """A Markdown table of the paired differences `learned` − each other optimizer, per run on the
    same test functions, at each of `steps` and for the mean loss over steps 1..the last of them,
    with 95% intervals and verdicts (holds: `learned` lower; fails: higher; tie: cannot tell)."""
    last = max(curves[learned].steps if s == -1 else s for s in steps)
    name = lambda s: curves[learned].steps if s == -1 else s
    head = (f"| {learned} − | " + " | ".join(f"at step {name(s)} | verdict" for s in steps)
            + f" | mean over steps 1–{last} | verdict |")
    rule = "| --- | " + " | ".join("---: | :---:" for _ in steps) + " | ---: | :---: |"
    cols = [versus(curves, learned, s) for s in steps] + [versus(curves, learned, last, over=True)]
    lines = [head, rule]
    for label in cols[0]:
        cells = " | ".join(f"{paired_text(col[label])} | {col[label].verdict}" for col in cols)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def ranking(curves: dict[str, Curve], learned: str = "LSTM", step: int = -1) -> str:
    """Sentences saying where the learned optimizer stands against every other curve at `step`
    and over steps 1..step, from paired differences on the same test runs (95% intervals); for
    curves without per-run numbers, from their intervals alone, and it says so."""
    me = curves[learned]
    step = me.steps if step == -1 else step
    others = {k: c for k, c in curves.items() if k != learned}
    lowest = sum(me.mean[t] < min(c.mean[t] for c in others.values()) for t in range(1, step + 1))
    tail = f" Its mean is the lowest of these {len(curves)} curves at {lowest} of the {step} steps."
    if any(c.per_run is None for c in curves.values()):
        return _unpaired(me, others, learned, step) + tail
    at, over = versus(curves, learned, step), versus(curves, learned, step, over=True)

    # labels with commas in them ('LSTM, conv × 0.01') would run together in a list: quote them all
    name = (lambda k: f"“{k}”") if any("," in k for k in curves) else (lambda k: k)

    def grouped(comparisons):
        by = {v: [name(k) for k, p in comparisons.items() if p.verdict == v] for v in WORDS}
        return ", ".join(f"{WORDS[v]} {listed(ks)}" for v, ks in by.items() if ks)

    runs = me.runs
    return (f"At step {step}, the {name(learned)} ({loss_text(me.mean[step])}) is {grouped(at)}; over steps "
            f"1–{step}, its loss averaged over those steps is {grouped(over)} (paired differences over the "
            f"same {runs} test runs, 95% intervals; a tie means the interval contains zero).{tail}")


def drift(curve: Curve, start: int | None = None, end: int = -1) -> str:
    """Whether a curve's runs still improve between two steps (past the horizon trained on, say):
    each run's loss at `end` minus its loss at `start` (None: the kept step nearest below halfway),
    paired over the same runs (95% interval), rather than the lowest point of the mean curve, which
    noise pulls down. A sentence."""
    end = curve.steps if end == -1 else end
    if start is None:  # a curve without per-run numbers gets curve.at's error below
        start = max(s for s in (curve.per_run or {}).get("steps", [end // 2]) if s <= end // 2)
    p = paired(curve.at(end), curve.at(start))
    moves = {"holds": "keeps falling", "fails": "climbs back",
             "tie": "neither falls nor climbs by more than the runs can tell"}[p.verdict]
    return (f"From step {start:,} to step {end:,}, {curve.label}'s loss changes by {paired_text(p)} "
            f"(each run's change, over the same {p.runs} runs, 95% interval): it {moves}.")


def listed(labels: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _unpaired(me: Curve, others: dict[str, Curve], learned: str, step: int) -> str:
    """The comparison with the best tuned baseline when only means and intervals are known."""
    tuned = {k: c for k, c in others.items() if c.lr is not None} or others
    best_label = min(tuned, key=lambda k: tuned[k].mean[step])
    best = tuned[best_label]
    a, b = me.mean[step], best.mean[step]
    separated = unpaired(me, best, step) != "tie"
    where = "below" if a < b else "above"
    how = "and the 95% intervals do not overlap" if separated else "but the 95% intervals overlap"
    return (f"At step {step}, the {learned} is at {loss_text(a)}, {where} the best tuned baseline "
            f"({best_label}, {loss_text(b)}), {how} (these curves predate per-run records, so the "
            "comparison is not paired).")


def versus_paper(curves: dict[str, Curve], paper: dict[str, float]) -> str:
    """One sentence comparing our final losses with the values read off the paper's figure."""
    ratios = {k: curves[k].final / v for k, v in paper.items() if k in curves}
    above = [k for k, r in ratios.items() if r > 1]
    span = f"{min(ratios.values()):.1f}× to {max(ratios.values()):.1f}×"
    if len(above) == len(ratios):
        return f"Every optimizer ends above the paper's value, by {span}."
    if not above:
        return f"Every optimizer ends below the paper's value ({span} of it)."
    return f"Ours end at {span} the paper's values; above it: {', '.join(above)}."


def _below_all(comparisons: dict[str, Paired]) -> str:
    """The verdict on "below every one of them", naming the ones that keep it from holding:
    'holds', 'tie (NAG)', 'fails (ADAM, NAG)'."""
    verdict = beats_all(p.verdict for p in comparisons.values())
    blocking = [k for k, p in comparisons.items() if p.verdict == verdict] if verdict != "holds" else []
    return f"{verdict} ({', '.join(blocking)})" if blocking else verdict


def seeds_table(curves: dict[str, Curve], trained: list[str], step: int = -1,
                costs: dict[str, str] | None = None) -> str:
    """Variance across meta-training: each independently trained optimizer against the best tuned
    baseline at `step` (its lowest mean; paired, on the same test runs) and its verdict against every
    tuned baseline (holds only when it is below each: the ledger's "holds for k of n"), and their spread; with
    `costs` (label → what its meta-training took, in words: `spent`) a list of what each took."""
    step = curves[trained[0]].steps if step == -1 else step
    tuned = {k: c for k, c in curves.items() if c.lr is not None}
    best = min(tuned, key=lambda k: tuned[k].mean[step])
    lines = [f"| trained optimizer | loss at step {step} | − {best} at step {step} | below every tuned baseline | "
             f"− {best}, mean over steps 1–{step} | below every tuned baseline, mean over steps 1–{step} |",
             "| --- | ---: | ---: | :---: | ---: | :---: |"]
    held = 0
    for label in trained:
        c = curves[label]
        at = versus({label: c, **tuned}, label, step)
        over = versus({label: c, **tuned}, label, step, over=True)
        held += _below_all(at) == "holds"  # no baseline named: below every one
        lines.append(f"| {label} | {loss_text(c.mean[step])} ± {loss_text(c.ci95[step])} | {paired_text(at[best])} | "
                     f"{_below_all(at)} | {paired_text(over[best])} | {_below_all(over)} |")
    means = [curves[k].mean[step] for k in trained]
    spread = (f"their mean losses at step {step} span {loss_text(min(means))} to {loss_text(max(means))}"
              + (f" (standard deviation across trainings {loss_text(float(np.std(means, ddof=1)))})"
                 if len(means) > 1 else ""))
    paid = [f"- {label}: {costs[label]}" for label in trained if label in (costs or {})]
    return ("\n".join(lines) + f"\n\n{held} of {len(trained)} trained optimizers are below every tuned baseline "
            f"at step {step} (paired; the best tuned baseline, {best}, ends at "
            f"{loss_text(tuned[best].mean[step])}); {spread}."
            + ("\n\nWhat each one's meta-training took:\n\n" + "\n".join(paid) if paid else ""))


def seeds_tables(curves: dict[str, Curve], trained: list[str], steps, costs: dict[str, str] | None = None) -> str:
    """`seeds_table` at each of `steps` (ascending, each once), with what each training took
    (`costs`) listed under the last."""
    steps = sorted(set(steps))
    return "\n\n".join(seeds_table(curves, trained, step=s, costs=costs if s == steps[-1] else None) for s in steps)


def architectures_table(sweep: dict[tuple[int, int], dict[str, Curve]], trained: list[str],
                        against: tuple[str, ...] = ("ADAM", "NAG"), step: int = 100) -> str:
    """An architecture sweep (the paper's Fig. 6) as Markdown: `sweep` maps (hidden layers, units per
    layer) to that network's curves, all on the same test runs. A row per network gives each trained
    optimizer's mean loss at `step` ± its 95% interval with its verdict on "below every one of
    `against`" (paired, run by run: the ledger's), then the baselines'; the sentence under it counts,
    for each trained optimizer, the networks where that holds, ties and fails."""
    lines = ["| layers | hidden | " + " | ".join([*trained, *against]) + " |",
             "| ---: | ---: | " + " | ".join([":---:"] * len(trained) + ["---:"] * len(against)) + " |"]
    verdicts = {label: [] for label in trained}
    for (layers, hidden), curves in sweep.items():
        cells = []
        for label in trained:
            mine = {label: curves[label], **{k: curves[k] for k in against}}
            verdicts[label].append(beats_all(p.verdict for p in versus(mine, label, step).values()))
            cells.append(f"{_mean_text(curves[label], step)} {verdicts[label][-1]}")
        lines.append(f"| {layers} | {hidden} | " + " | ".join(cells + [_mean_text(curves[k], step) for k in against]) + " |")
    runs = {c.runs for curves in sweep.values() for c in curves.values()}
    n = "/".join(map(str, sorted(runs)))
    counts = [f"{label} holds in {v.count('holds')}, is a tie in {v.count('tie')} and fails in {v.count('fails')}"
              for label, v in verdicts.items()]
    return ("\n".join(lines) + f"\n\nBelow {listed(list(against))}, each tuned per network, at step {step} "
            f"(paired 95% intervals over the same {n} test runs), of {len(sweep)} networks: {'; '.join(counts)}. "
            f"With {n} runs a tie says the runs cannot tell the optimizers apart, not that they are level.")


def _mean_text(curve: Curve, step: int) -> str:
    return f"{loss_text(curve.mean[step])} ± {loss_text(curve.ci95[step])}"


def sweep_table(result: dict, reference: tuple[str, float] | None = None, chance: float | None = None) -> str:
    """A sweep's table (`l2l.training.sweep`) as Markdown: each trial's meta-learning rate, epochs
    trained, best validation loss and where, its last validation (far above its best: a trial
    that collapsed), wall time; then a sentence on where the search stands
    and, given `reference` (label, best validation), how its winner compares; given `chance`, the
    loss of a uniform guess, which trials sat there and for how long (`stalls`)."""
    epochs = result["recipe"]["epochs"]
    lines = ["| trial | meta-learning rate | epochs | best validation (epoch) | last validation | minutes | trained on |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        best = f"{r['best_val']:.4f} ({r['best_epoch']:,})" if r["validation"] else "–"
        last = f"{r['validation'][-1][1]:.4f}" if r["validation"] else "–"
        together = f", population of {r['population']}" if r.get("population", 1) > 1 else ""
        lines.append(f"| {r['trial']} | {r['meta_lr']:.3g} | {r['epochs']:,} of {epochs:,} | {best} | {last} | "
                     f"{r['minutes']:.0f} | {hardware_text(r['hardware'])}{together} |")
    finished = [r for r in result["rows"] if r["finished"]]
    started = len(result["rows"]) - len(finished)
    waiting = result["trials"] - len(result["rows"])
    count = lambda n, one, many: f"{n} {one if n == 1 else many}"  # '1 has', '3 have'
    if len(finished) == result["trials"]:
        text = f"All {result['trials']} trials have finished their {epochs:,} epochs."
    else:
        text = (f"Of {result['trials']} trials, {count(len(finished), 'has finished its', 'have finished their')} "
                f"{epochs:,} epochs, {count(started, 'is', 'are')} part-way and {count(waiting, 'has', 'have')} not started.")
    if result["winner"] is None:
        text += " No winner is chosen until a trial finishes."
    else:
        win = next(r for r in result["rows"] if r["trial"] == result["winner"])
        text += (f" The lowest best validation{'' if result['complete'] else ' so far'} is trial "
                 f"{win['trial']}'s, {win['best_val']:.4f} at meta-learning rate {win['meta_lr']:.3g}")
        if reference:
            label, val = reference
            text += f" ({label}: {val:.4f}, on the same validation functions)"
        text += "."
    if chance is not None:
        text += " " + stalls(result, chance)
    return "\n".join(lines) + "\n\n" + text


def at_chance(validation: list, chance: float, within: float = 0.01) -> list[tuple[int, int, int | None]]:
    """The spans of a validation curve ([epoch, loss] pairs) at `chance` (within `within` of it, or
    above: the loss of a uniform guess, a classifier not learning) for two validations or more in a
    row: (first epoch, last epoch, the epoch it was learning again by, or None if it never was)."""
    spans, run = [], []
    for epoch, val in [*validation, (None, -math.inf)]:  # the end closes a run still there
        if val >= chance - within:
            run.append(epoch)
            continue
        if len(run) >= 2:
            spans.append((run[0], run[-1], epoch))
        run = []
    return spans


def stalls(result: dict, chance: float, within: float = 0.01) -> str:
    """Which of a sweep's trials sat at `chance` (`at_chance`), from which epoch to which, and
    whether they learned again after: a sentence."""
    spans = [f"trial {r['trial']} from epoch {first:,} to {last:,}, "
             + (f"learning again by {again:,}" if again is not None else
                "its last validation" + ("" if r["finished"] else " so far"))
             for r in result["rows"] for first, last, again in at_chance(r["validation"], chance, within)]
    head = (f"At chance (validation {chance - within:.2f} or above; a uniform guess scores {chance:.3f}) for two "
            "validations or more in a row:")
    return f"{head} " + "; ".join(spans) + "." if spans else f"{head} none."


def stages_table(history: list[dict]) -> str:
    """A curriculum's stages (`TrainConfig.curriculum`) from a checkpoint's history as Markdown:
    per training horizon, the epochs and minutes spent on it, the validation loss (at the horizon
    it was validated on) of the weights it started from (the previous stage's best: its `mark`)
    and its best one; a stage whose validations never beat its start says so."""
    lines = ["| trained on (steps) | validated on (steps) | epochs | minutes | validation at its start | best validation |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    start_epoch, start_time, mark = 0, 0.0, None
    for steps in dict.fromkeys(h["steps"] for h in history):
        mine = [h for h in history if h["steps"] == steps]
        end = mine[-1]
        best = min(h["val"] for h in mine)
        start = "–" if mark is None else loss_text(mark)
        best_text = loss_text(best) if mark is None or best < mark else "none better"
        lines.append(f"| {steps:,} | {end['val_steps']:,} | {start_epoch + 1:,}–{end['epoch']:,} | "
                     f"{(end['time'] - start_time) / 60:.1f} | {start} | {best_text} |")
        start_epoch, start_time, mark = end["epoch"], end["time"], end.get("mark")
    return "\n".join(lines)


def trained_horizons(ck: dict, config) -> tuple[int, ...]:
    """The horizons a checkpoint's best weights were trained on: its recipe's (`config`, a
    TrainConfig) up to the curriculum stage they come from (a later stage that never beat them
    does not count); `(config.steps,)` without a curriculum."""
    steps = next((h.get("steps", config.steps) for h in ck["history"] if h["epoch"] == ck["best"]["epoch"]),
                 config.steps)
    return tuple(h for h in config.horizons if h <= steps)


def how_far(ck: dict | None, config) -> str | None:
    """How far an unfinished meta-training got, '455 of 1,500 epochs', or None when the checkpoint
    (of the recipe `config`, a TrainConfig) is missing or finished."""
    return None if ck is None or finished(ck, config) else f"{ck['epoch']:,} of {config.epochs:,} epochs"


def unfinished(ck: dict | None, config, *others: str, label: str = "") -> str | None:
    """A results file's `unfinished` (the ledger's note): how far an unfinished meta-training got and
    where its best weights so far, the ones tested, come from, 'LSTM-10k seed 0: 455 of 1,500 epochs
    (best weights: epoch 300)' (`label` names it), or None when the checkpoint is missing or
    finished. `others`, lines on the same recipe's other trainings (its seeds still running, say),
    join it: '...; seed 1: ...', None only when nothing is unfinished."""
    own = how_far(ck, config)
    if own is not None:
        best = f" (best weights: epoch {ck['best']['epoch']:,})" if validated(ck) else ""
        own = (f"{label}: " if label else "") + own + best
    return "; ".join(filter(None, (own, *others))) or None


def spent(ck: dict, config=None) -> str:
    """A checkpoint's meta-training so far, in words, and where it ran (`hardware_text`): '1,500
    epochs, 52 min on AMD EPYC (1 thread)', or with its recipe (`config`, a TrainConfig) while
    unfinished '455 of 1,500 epochs (unfinished), 127 min on ...', once its own rule ended it early
    '455 of 1,500 epochs (stopped: validation stopped improving), 127 min on ...' (patience) or
    '(stopped: its 500-step stage never improved on the weights it started from)' (the curriculum);
    with ', 118 of them imitating' after the epochs for those that imitated a teacher, and ', from
    `cifar.pt`'s best weights (its epoch 300)' for one that started from another's (`TrainConfig.start`:
    its epochs and minutes are its own, not counting the other's)."""
    left = how_far(ck, config) if config is not None else None
    early = config is not None and ck.get("stopped") and ck["epoch"] < config.epochs
    why = ("validation stopped improving" if not early or ck.get("stage_improved", True) else  # the curriculum's rule
           f"its {config.horizons[ck.get('stage', 0)]:,}-step stage never improved on the weights it started from")
    epochs = (f"{left} (unfinished)" if left else f"{ck['epoch']:,} of {config.epochs:,} epochs (stopped: {why})"
              if early else f"{ck['epoch']:,} epochs")
    where = f" on {hardware_text(ck['hardware'])}" if ck.get("hardware") else ""
    begun = ck.get("started_from")
    return (epochs + (f", {ck['imitated']:,} of them imitating" if ck.get("imitated") else "")
            + (f", from `{begun['file']}`'s best weights (its epoch {begun['epoch']:,})" if begun else "")
            + f", {minutes_text(ck['wall_time'])}{where}")


def hardware_text(description: str) -> str:
    """Where a computation ran (`l2l.runtime.hardware`, or a chain of them a resumed training
    recorded: 'A, then B'), as the book names it: a CPU without the family and model numbers that
    `runtime.cpu_model` records for the probes (older records lack them, so one machine would
    read as two) and without '(R)' and '(TM)', and a machine named twice in a row named once:
    'AMD EPYC (1 thread), then AMD EPYC family 25 model 1 (1 thread)' is 'AMD EPYC (1 thread)'."""
    names = []
    for part in description.split(", then "):
        name = re.sub(r"\((R|TM)\)", "", re.sub(r" family \d+ model \d+", "", part))
        if not names or names[-1] != name:
            names.append(name)
    return ", then ".join(names)


def trainings_total(checkpoints: list[dict]) -> str:
    """Every meta-training behind a chapter in one line: how many, their wall time in all, and how
    many ran on a GPU for some of their epochs (a part of `hardware` that names no CPU): '27
    trainings, 73.1 hours in all (wall time; 3 of them partly on a GPU)'."""
    hours = sum(ck["wall_time"] for ck in checkpoints) / 3600
    gpu = sum(any(cpu_of(part) is None for part in ck.get("hardware", "").split(", then ")) for ck in checkpoints)
    n = len(checkpoints)
    return (f"{n:,} training{'' if n == 1 else 's'}, {hours:,.1f} hours in all (wall time"
            + (f"; {gpu} of them partly on a GPU)" if gpu else ")"))


def minutes_text(seconds: float) -> str:
    """A wall time in minutes: '52 min', '7.3 min' below ten."""
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:,.0f} min"


def trained_text(ck: dict) -> str:
    """A checkpoint's meta-training in one line, short enough for the page: what it took and where
    (`spent`), its best validation loss (the final loss on the validation functions) and that
    epoch, and how many epochs it skipped for a non-finite loss where it skipped any."""
    best, skipped = ck["best"], ck.get("skipped", 0)
    start = " (where it started)" if best["epoch"] == 0 and ck.get("started_from") else ""
    return (spent(ck) + f"; best validation loss {best['val']:.4f} at epoch {best['epoch']:,}{start}"
            + (f"; {skipped:,} epochs skipped (non-finite loss)" if skipped else ""))


def ingredients_table(curves: dict[str, Curve], base: str, costs: dict[str, str],
                      steps: tuple[int, ...] = (100, 200)) -> str:
    """What each change to a training recipe adds: a Markdown row per learned optimizer in `costs`
    (label → what its training cost, in words), its mean loss at each of `steps`, and for all but
    `base` the paired difference label − `base` on the same test runs (95% interval; lower: the
    change helps, higher: it hurts, tie: cannot tell). Where a curve keeps no per-run numbers, the
    difference of the means and the verdict of their intervals (`unpaired`), marked so."""
    words = {"holds": "lower", "fails": "higher", "tie": "tie"}
    head = ("| recipe | meta-training | " + " | ".join(f"loss at step {s} | − {base} at step {s}" for s in steps) + " |")
    rule = "| --- | --- | " + " | ".join("---: | ---:" for _ in steps) + " |"
    lines, b = [head, rule], curves[base]
    for label, cost in costs.items():
        c = curves[label]
        cells = []
        for s in steps:
            if label == base:
                versus_base = "–"
            elif c.per_run is None or b.per_run is None:
                versus_base = f"{signed_text(c.mean[s] - b.mean[s])} (unpaired) {words[unpaired(c, b, s)]}"
            else:
                p = paired(c.at(s), b.at(s))
                versus_base = (f"{words[p.verdict]} ({p.method})" if p.low != p.low  # no interval
                               else f"{paired_text(p)} {words[p.verdict]}")
            cells += [f"{loss_text(c.mean[s])} ± {loss_text(c.ci95[s])}", versus_base]
        lines.append(f"| {label} | {cost} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
