"""Figures in the paper's style: loss (log scale) against step, a 95% band around each mean.

One color per optimizer across the whole book, so a reader can follow "ADAM" from chapter to chapter,
and one per variant (a longer training, an ablation) across its chapter.
"""

from __future__ import annotations

import re
import weakref

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogFormatterSciNotation

from l2l.book.presets import seed_of
from l2l.book.report import listed
from l2l.evaluation import Curve

COLORS = {  # every label a chapter plots; no two share a color (tests/test_plotting.py checks it)
    "LSTM": "#d62728",
    "LSTM-sub": "#ff9896",
    "LSTM-mix": "#c51b7d",  # magenta: apart from NAG's purple, which it lies on in chapter 3
    "conv LSTM silenced": "#e7ba52",
    "fc LSTM silenced": "#393b79",
    "one LSTM": "#008080",
    "LSTM+GAC": "#8c564b",
    "NTM-BFGS": "#e377c2",
    "NTM-L-BFGS": "#17becf",
    "ADAM": "#1f77b4",
    "RMSprop": "#2ca02c",
    "SGD": "#ff7f0e",
    "NAG": "#9467bd",
    "BFGS": "#7f7f7f",
    "L-BFGS": "#bcbd22",
    "BFGS, exact line search": "#000000",
}

# For labels the book does not know (a variant added later): none of them is a book color, nor a
# lighter shade of one (light orange beside SGD reads as SGD), and all far apart (olive, indigo,
# brick, orchid, gold). A chapter with more variants hands them out again, never twice in a figure.
SPARE = ("#637939", "#5254a3", "#843c39", "#ce6dbd", "#bd9e39")

BAND_NOTE = ("Where the lower edge of an interval is at or below zero, which a log axis cannot show, "
             "only its upper edge is drawn (dotted).")


def _book_color(label: str) -> str | None:
    """The book's color for a label, or for the label without a trailing parenthesis ("ADAM (lr
    0.1)" is ADAM), else None. Other variants ("LSTM seed 1") are not the base optimizer."""
    return COLORS.get(label, COLORS.get(re.sub(r"\s*\(.*\)$", "", label)))


# The spare color each variant was first given, for the life of the process (one chapter's kernel):
# a variant keeps it in every later figure, so "LSTM, 2,000 epochs" looks the same throughout its
# chapter whatever else a figure shows.
_GIVEN: dict[str, str] = {}


def color(label: str) -> str:
    return colors_for([label])[label]


def colors_for(labels) -> dict[str, str]:
    """A color per label: the book's own where it has one; else the spare color the label was first
    given in this process, unless another label of the same figure has it; else the first spare that
    no other variant has been given (so variants such as ablations stay apart), then the first that
    no label of this figure uses."""
    colors = {label: _book_color(label) for label in labels}
    for label in colors:
        if colors[label] is None:
            taken = set(colors.values())
            given = _GIVEN.get(label)
            if given is None or given in taken:
                free = [c for c in SPARE if c not in taken]
                given = next((c for c in free if c not in _GIVEN.values()), free[0] if free else SPARE[0])
                _GIVEN.setdefault(label, given)
            colors[label] = given
    return colors


_OPEN_BELOW = weakref.WeakKeyDictionary()  # axes → the labels `plot_curves` drew there with an upper edge alone


def open_below(ax) -> list[str]:
    """The labels whose band `plot_curves` drew on `ax` with its upper edge alone: on a log axis,
    where their 95% interval reaches zero or below, the band has no lower edge."""
    return _OPEN_BELOW.get(ax, [])


_PEAKS = weakref.WeakKeyDictionary()  # axes → {label: the highest finite mean `plot_curves` drew there}


def band_note(*axes) -> str:
    """The sentences a figure's caption adds (glued into it by the chapter): `BAND_NOTE` when
    `plot_curves` drew an upper edge alone on any of `axes`, and, where a chapter cut an axis
    (`set_ylim`) below a mean it drew, which curves leave it and how high they go; else ""."""
    notes = [BAND_NOTE] if any(open_below(ax) for ax in axes) else []
    for ax in axes:
        top = ax.get_ylim()[1]
        above = {label: peak for label, peak in _PEAKS.get(ax, {}).items() if peak > top}
        if above:
            where = f"In the panel “{ax.get_title()}”, the" if len(axes) > 1 and ax.get_title() else "The"
            notes.append(f"{where} loss axis stops at {top:g}; "
                         + ", ".join(f"{label}'s mean leaves it (up to {peak:.3g})" for label, peak in above.items())
                         + ".")
    return " ".join(notes)


def plot_curves(curves: dict[str, Curve], ax=None, title: str = "", log: bool = True,
                start: int = 0, legend: bool | str = True):
    """Mean loss per step with its 95% interval as a band, one line per optimizer; the legend in
    the axes' emptiest corner, or with `legend="below"` under them, in two columns (for many curves
    that cross: the figure then needs room below, which `tight_layout` makes).

    On a log axis a band is drawn only where its lower edge is positive; at the steps where it is
    not, only the upper edge is drawn, dotted, and the label is listed in `open_below(ax)` (see
    `band_note` for the caption's sentence)."""
    ax = ax or plt.gca()
    colors = colors_for(curves)
    for label, c in curves.items():
        mean, half = np.asarray(c.mean, dtype=float), np.asarray(c.ci95, dtype=float)
        steps = np.arange(len(mean))[start:]
        mean, lo, hi = mean[start:], (mean - half)[start:], (mean + half)[start:]
        name = label if c.lr is None else f"{label} (lr {c.lr:.3g})"
        ax.plot(steps, mean, color=colors[label], label=name, lw=1.8 if c.lr is None else 1.3)
        if np.isfinite(mean).any():
            _PEAKS.setdefault(ax, {})[label] = float(np.nanmax(np.where(np.isfinite(mean), mean, np.nan)))
        shown = lo > 0 if log else np.ones_like(lo, dtype=bool)
        ax.fill_between(steps, np.where(shown, lo, np.nan), hi, where=shown, color=colors[label],
                        alpha=0.2, lw=0)
        if not shown.all():
            _OPEN_BELOW.setdefault(ax, []).append(label)
            # the upper edge alone, over the open steps and one step either side, so that it
            # meets the band and a single open step still draws a segment
            near = ~shown | np.r_[~shown[1:], False] | np.r_[False, ~shown[:-1]]
            ax.plot(steps, np.where(near, hi, np.nan), color=colors[label], lw=0.9, ls=":")
    if log:
        log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if legend == "below":
        ax.legend(frameon=False, fontsize="small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    elif legend:
        ax.legend(frameon=False, fontsize="small")
    return ax


def plot_training(history: list[dict], ax=None, title: str = "meta-training", ylabels: str = "both",
                  legend: bool = True):
    """Training meta-loss and validation final loss against epoch, from a checkpoint's history.
    A curriculum's history (`val_steps` in its records) gets a validation line per horizon and a
    dotted line where training moved on to a longer one; each later line starts at its stage's mark
    (hollow: the best weights so far, validated at the new horizon when training moved on).
    `ylabels`: which y axes are labelled ("both", "left", "right" or "none"), so that panels in a
    grid can share the labels of its outer columns."""
    ax = ax or plt.gca()
    epochs = [h["epoch"] for h in history]
    horizons = list(dict.fromkeys(h.get("val_steps") for h in history))  # None: no curriculum
    shades = plt.cm.Reds(np.linspace(0.45, 0.95, len(horizons))) if len(horizons) > 1 else [color("LSTM")]
    marks = [(after.get("val_steps"), (h["epoch"], h["mark"]))  # each stage's mark, at the horizon it validates
             for h, after in zip(history, history[1:]) if "mark" in h]
    for horizon, shade in zip(horizons, shades):
        at = [point for h, point in marks if h == horizon]
        points = sorted([(h["epoch"], h["val"]) for h in history if h.get("val_steps") == horizon] + at,
                        key=lambda point: point[0])
        ax.plot(*zip(*points), "o-", color=shade, ms=3,
                label="validation final loss" if horizon is None else f"validation loss at step {horizon}")
        for point in at:
            ax.plot(*point, "o", color=shade, mfc="white", ms=5, zorder=3, label="_mark")
    for h in history:
        if "advanced_to" in h:
            ax.axvline(h["epoch"], color="k", lw=0.8, ls=":")
            ax.annotate(f"trains on {h['advanced_to']}", (h["epoch"], 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -3), textcoords="offset points", va="top", fontsize="x-small")
    log_scale(ax)
    ax.set_xlabel("epoch")
    twin = ax.twinx()
    twin.plot(epochs, [h["train"] for h in history], color="0.5", alpha=0.7, label="training meta-loss")
    log_scale(twin)
    if ylabels in ("both", "left"):
        ax.set_ylabel("validation loss at the last step")
    if ylabels in ("both", "right"):
        twin.set_ylabel("training meta-loss (Σ over an unroll)")
    ax.set_title(title)
    if legend:
        lines = [line for line in ax.get_lines() + twin.get_lines() if not line.get_label().startswith("_")]
        labels = [line.get_label() for line in lines]
        hollow = [line for line in ax.get_lines() if line.get_label() == "_mark"][:1]  # one entry for all marks
        below = dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2) if len(horizons) > 1 else {}
        ax.legend(lines + hollow, labels + ["its best weights when it moved on"] * len(hollow), frameon=False,
                  fontsize="small", **below)
    return ax


def plot_sweep(result: dict, ax=None, reference: tuple[str, list] | None = None):
    """Each trial's validation loss against epoch, from a sweep's table (`l2l.training.sweep`),
    darker for a larger meta-learning rate, a trial still training marked in its label; with
    `reference` (label, [[epoch, validation], ...]), that training's validation too, dashed black.
    Log y axis: a trial that diverged or collapsed shows as a line far above the others."""
    ax = ax or plt.gca()
    rows = sorted((r for r in result["rows"] if r["validation"]), key=lambda r: r["meta_lr"])
    shades = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(rows), 1)))
    for r, shade in zip(rows, shades):
        unfinished = "" if r["finished"] else f", {r['epochs']:,} epochs so far"
        ax.plot(*zip(*r["validation"]), "o-", ms=2.5, lw=1.3, color=shade,
                label=f"trial {r['trial']} (meta-lr {r['meta_lr']:.3g}{unfinished})")
    if reference:
        label, points = reference
        ax.plot(*zip(*points), "--", color="k", lw=1.3, label=label)
    _validation_axes(ax)
    ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return ax


def plot_architectures(sweep: dict[tuple[int, int], dict[str, Curve]], axes, panels: list[str],
                       others: tuple[str, ...] = (), step: int = 100, trained_on: tuple[int, int] = (1, 20)):
    """The paper's Fig. 6: loss at `step` against units per hidden layer, from `sweep` ((hidden
    layers, units) → curves), one panel of `axes` per label of `panels`, a line per depth (one
    layer: circles, solid; two: squares, dashed) with 95% intervals. The first panel rings the
    network the learned optimizer trained on (`trained_on`: layers, units) and marks `others`
    (other trainings of its recipe, e.g. its other seeds) hollow and thin, without intervals: how
    far trainings spread. One legend for all, under the panels."""
    widths, depths = sorted({h for _, h in sweep}), sorted({d for d, _ in sweep})
    at = lambda label, layers: np.array([sweep[layers, h][label].mean[step] for h in widths])
    for ax, label in zip(axes, panels):
        for layers, style in zip(depths, ("o-", "s--")):
            half = [sweep[layers, h][label].ci95[step] for h in widths]
            ax.errorbar(widths, at(label, layers), yerr=half, fmt=style, color=color(label), capsize=3,
                        label=f"{layers} hidden layer{'s' if layers > 1 else ''}")
        ax.set_title(label)
        ax.set_xlabel("hidden units")
        ax.grid(alpha=0.3)
    first = axes[0]
    seeds = [seed_of(k, None) for k in others]  # "LSTM seed 1" → 1
    name = (f"seed{'s' * (len(others) > 1)} " + listed([str(k) for k in seeds]) if None not in seeds
            else listed(list(others))) if others else ""
    for k, label in enumerate(others):
        for layers, marker in zip(depths, "os"):
            first.plot(widths, at(label, layers), marker + ":", ms=4, lw=0.8, mfc="none", color=color(panels[0]),
                       label=f"{name} (no bars)" if k == 0 and layers == depths[0] else "_other")
    if trained_on in sweep:
        first.plot([trained_on[1]], [sweep[trained_on][panels[0]].mean[step]], "o", ms=14, mfc="none", mec="k",
                   label="trained on")
    first.set_ylabel(f"loss at step {step}")
    handles, labels = first.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: "hidden layer" not in labels[i])  # the depths first
    first.figure.legend([handles[i] for i in order], [labels[i] for i in order], frameon=False, fontsize="small",
                        loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(order))  # under the panels, clear of the data
    return axes


def plot_search_rates(tables: dict[str, dict], ax=None):
    """Each trial's best validation loss against its meta-learning rate, for several random searches
    of one recipe (`tables` maps a search's label to its table): a marker shape and color per
    search, hollow for a trial still training, each search's range shaded along the bottom and its
    winner ringed. Log-log, so a trial that never learned shows far above the others."""
    ax = ax or plt.gca()
    low = min(r["best_val"] for t in tables.values() for r in t["rows"] if r["validation"])
    for k, (label, shade) in enumerate(colors_for(list(tables)).items()):
        table, marker = tables[label], "os^D"[k % 4]
        rows = [r for r in table["rows"] if r["validation"]]
        for done in (True, False):
            pts = [(r["meta_lr"], r["best_val"]) for r in rows if r["finished"] == done]
            if pts:
                ax.plot(*zip(*pts), marker, ms=7, ls="none", color=shade, mfc=shade if done else "none",
                        label=label if done else f"{label}: still training")
        ax.axvspan(*table["range"], ymin=0.02 * k, ymax=0.02 * (k + 1) + 0.015, color=shade, alpha=0.5, lw=0)
        if table.get("complete") and table.get("winner") is not None:
            win = next(r for r in rows if r["trial"] == table["winner"])
            ax.plot(win["meta_lr"], win["best_val"], "o", ms=14, mfc="none", mec="k", ls="none",
                    label="a search's winner (lowest best validation)" if k == 0 else "_winner")
    ax.set(xscale="log", xlabel="meta-learning rate", ylabel="best validation loss")
    log_scale(ax)
    ax.set_ylim(bottom=0.8 * low)  # room for the ranges' bars below the lowest trial
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_validations(lines: dict[str, list], ax=None):
    """Validation loss against epoch for trainings validated on the same functions: `lines` maps a
    label to its [[epoch, validation], ...] (a checkpoint's history or a sweep row's `validation`),
    each in the label's book color. Log y axis, as `plot_sweep`."""
    ax = ax or plt.gca()
    for label, shade in colors_for(list(lines)).items():
        ax.plot(*zip(*lines[label]), "o-", ms=2, lw=1.3, color=shade, label=label)
    _validation_axes(ax)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _validation_axes(ax):
    """The axes of a validation-against-epoch figure: log loss, so a diverged training shows far above."""
    log_scale(ax)
    ax.set(xlabel="epoch", ylabel="validation loss at the last step")
    ax.grid(True, which="major", alpha=0.3)


class _LogLabels(LogFormatterSciNotation):
    """Log-axis tick labels: plain numbers (0.3, 1.6, 20) on an axis within [1e-3, 1e4], where a
    power of ten (1.6×10⁰) reads worse; powers of ten beyond."""

    def __call__(self, x, pos=None):
        label = super().__call__(x, pos)
        low, high = sorted(self.axis.get_view_interval())
        return f"{x:g}" if label and 1e-3 <= low and high <= 1e4 else label


def log_scale(ax):
    """A log y axis on `ax`, its ticks labelled by `_LogLabels`."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_LogLabels())
    ax.yaxis.set_minor_formatter(_LogLabels(labelOnlyBase=False))


def plot_throughput(rows: list[dict], axes, title: str = ""):
    """Optimizee steps per second against runs batched per meta-update, a line per implementation
    and a panel per problem (`l2l.bench` rows; log-log)."""
    problems = sorted({r["problem"] for r in rows}, key=[r["problem"] for r in rows].index)
    for ax, problem in zip(axes, problems):
        mine = [r for r in rows if r["problem"] == problem and "error" not in r]
        for impl in sorted({r["impl"] for r in mine}, key=[r["impl"] for r in mine].index):
            pts = sorted((r["runs"], r["steps_per_s"]) for r in mine if r["impl"] == impl)
            ax.plot(*zip(*pts), marker="o", label=impl, lw=2 if impl == "graphed" else 1.2)
        ax.set(xscale="log", yscale="log", xlabel="runs batched per meta-update",
               ylabel="optimizee steps per second", title=f"{problem} {title}".strip())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(frameon=False)


def glue_caption(prefix: str, *axes, **values):
    """Glue what a figure's caption reads from the executed notebook (MyST-NB's `glue`, nothing
    displayed): `<prefix>-note`, the band sentence of `band_note(*axes)` or "", and
    `<prefix>-<name>` for each value (numbers of runs, steps), so the caption is right at any scale.
    The caption, in the cell's metadata, pastes them with {glue:text}`<prefix>-runs`."""
    from myst_nb import glue

    glue(f"{prefix}-note", band_note(*axes), display=False)
    for name, value in values.items():
        glue(f"{prefix}-{name}", value, display=False)
