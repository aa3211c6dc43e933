import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from l2l.evaluation import Curve  # noqa: E402


def test_labels_without_a_book_color_get_distinct_spare_colors():
    from l2l.book.plotting import COLORS, colors_for

    colors = colors_for(["LSTM", "LSTM seed 1", "LSTM seed 2", "own variant", "ADAM (lr 0.1)"])
    assert colors["LSTM"] == COLORS["LSTM"] and colors["ADAM (lr 0.1)"] == COLORS["ADAM"]
    assert len(set(colors.values())) == 5


def test_the_books_colors_are_all_distinct_and_cover_every_plotted_label():
    from l2l.book.plotting import COLORS, SPARE, color

    assert len(set(COLORS.values())) == len(COLORS)
    assert not set(SPARE) & set(COLORS.values())  # an unknown label never looks like a book optimizer
    # the labels the chapters plot (notebooks/*.ipynb): each has a color of its own
    plotted = ["LSTM", "LSTM-sub", "LSTM-mix", "conv LSTM silenced", "fc LSTM silenced", "one LSTM",
               "LSTM+GAC", "NTM-BFGS", "NTM-L-BFGS", "ADAM", "RMSprop", "SGD", "NAG", "BFGS", "L-BFGS",
               "BFGS, exact line search"]
    assert all(label in COLORS for label in plotted)
    assert len({color(label) for label in plotted}) == len(plotted)
    assert color("SGD (lr 0.5)") == COLORS["SGD"] and color("LSTM seed 1") != COLORS["LSTM"]


def test_a_band_reaching_below_zero_on_a_log_axis_draws_only_its_upper_edge_there():
    from l2l.book.plotting import BAND_NOTE, band_note, open_below, plot_curves

    mean = np.array([1.0, 0.5, 0.2, 0.1, 0.1])
    tight = Curve("ADAM", list(mean), list(mean / 4), lr=0.1)
    wide = Curve("LSTM", list(mean), [0.1, 0.1, 0.3, 0.05, 0.2])  # lower edge ≤ 0 at steps 2 and 4
    assert open_below({"ADAM": tight, "LSTM": wide}) == ["LSTM"]
    assert open_below({"LSTM": wide}, start=5) == []

    fig, (a, b) = plt.subplots(1, 2)
    plot_curves({"ADAM": tight}, a)
    plot_curves({"ADAM": tight, "LSTM": wide}, b)
    assert a.open_below == [] and band_note(a) == ""
    assert b.open_below == ["LSTM"] and band_note(a, b) == BAND_NOTE
    # no fake lower edge: every band's lowest point is a positive lower edge of the interval
    for collection in b.collections:
        ys = np.concatenate([p.vertices[:, 1] for p in collection.get_paths()])
        assert np.all(ys[np.isfinite(ys)] > 0)
    dotted = [line for line in b.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1
    drawn = ~np.isnan(np.asarray(dotted[0].get_ydata(), dtype=float))
    assert drawn.tolist() == [False, True, True, True, True]  # open steps 2 and 4, with neighbours
    assert np.allclose(np.asarray(dotted[0].get_ydata(), dtype=float)[drawn], (mean + wide.ci95)[1:])
    plt.close(fig)


def test_a_linear_axis_draws_every_band_whole():
    from l2l.book.plotting import plot_curves

    fig, ax = plt.subplots()
    plot_curves({"LSTM": Curve("LSTM", [1.0, 0.1], [0.5, 0.5])}, ax, log=False)
    assert ax.open_below == [] and not [l for l in ax.get_lines() if l.get_linestyle() == ":"]
    plt.close(fig)
