"""Figures in the paper's style: loss (log scale) against step, a 95% band around each mean.

One color per optimizer across the whole book, so a reader can follow "ADAM" from chapter to chapter.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from l2l.evaluation import Curve

COLORS = {
    "LSTM": "#d62728",
    "LSTM-sub": "#ff9896",
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


SPARE = ("#17becf", "#bcbd22", "#7f7f7f", "#8c564b", "#e377c2", "#000000", "#aec7e8", "#98df8a")


def _book_color(label: str) -> str | None:
    """The book's color for a label or its first word ("ADAM (lr 0.1)" is ADAM), else None."""
    return COLORS.get(label, COLORS.get(label.split(" ")[0]))


def color(label: str) -> str:
    return _book_color(label) or SPARE[0]


def colors_for(labels) -> dict[str, str]:
    """A color per label: the book's own where it has one, else the next spare color that no
    other label of the same figure uses (so variants such as ablations stay apart)."""
    known = {label: _book_color(label) for label in labels}
    spare = iter(c for c in SPARE if c not in known.values())
    return {label: c or next(spare, SPARE[0]) for label, c in known.items()}


def plot_curves(curves: dict[str, Curve], ax=None, title: str = "", log: bool = True,
                start: int = 0, legend: bool = True):
    """Mean loss per step with its 95% interval as a band, one line per optimizer."""
    ax = ax or plt.gca()
    colors = colors_for(curves)
    for label, c in curves.items():
        mean, half = np.asarray(c.mean), np.asarray(c.ci95)
        steps = np.arange(len(mean))[start:]
        name = label if c.lr is None else f"{label} (lr {c.lr:.3g})"
        ax.plot(steps, mean[start:], color=colors[label], label=name, lw=1.8 if c.lr is None else 1.3)
        lo = mean - half
        if log:  # a band reaching below zero cannot be drawn on a log axis: cut it at a tenth
            lo = np.maximum(lo, mean / 10)
        ax.fill_between(steps, lo[start:], (mean + half)[start:], color=colors[label], alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(frameon=False, fontsize="small")
    return ax


def plot_training(history: list[dict], ax=None, title: str = "meta-training"):
    """Training meta-loss and validation final loss against epoch, from a checkpoint's history."""
    ax = ax or plt.gca()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["val"] for h in history], "o-", color=color("LSTM"), label="validation final loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss at the last step")
    twin = ax.twinx()
    twin.plot(epochs, [h["train"] for h in history], color="0.5", alpha=0.7, label="training meta-loss")
    twin.set_yscale("log")
    twin.set_ylabel("training meta-loss (Σ over an unroll)")
    ax.set_title(title)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], frameon=False, fontsize="small")
    return ax


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
