"""What a chapter prints besides its figures: tables of results and the sentences under them.
(Where and how long things ran: `l2l.runtime.hardware`.)"""

from __future__ import annotations

from l2l.evaluation import Curve


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


def ranking(curves: dict[str, Curve], learned: str = "LSTM", step: int = -1) -> str:
    """One sentence saying where the learned optimizer ends against the best other curve, and
    whether the 95% intervals separate them."""
    me = curves[learned]
    # compare with the tuned baselines (curves with a learning rate), not other learned optimizers
    others = {k: c for k, c in curves.items() if k != learned and c.lr is not None}
    others = others or {k: c for k, c in curves.items() if k != learned}
    best_label = min(others, key=lambda k: others[k].mean[step])
    best = others[best_label]
    a, b = me.mean[step], best.mean[step]
    separated = abs(a - b) > me.ci95[step] + best.ci95[step]
    where = "below" if a < b else "above"
    how = "and the 95% intervals do not overlap" if separated else "but the 95% intervals overlap"
    steps = len(me.mean) - 1
    lowest = sum(me.mean[t] < min(c.mean[t] for c in others.values()) for t in range(1, steps + 1))
    return (f"At step {steps if step == -1 else step}, the {learned} ends at {loss_text(a)}, "
            f"{where} the best tuned baseline ({best_label}, {loss_text(b)}), {how}. "
            f"Its mean is the lowest of all curves at {lowest} of the {steps} steps.")


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
