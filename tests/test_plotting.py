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


def test_a_variant_keeps_its_color_from_figure_to_figure_whatever_else_a_figure_shows():
    """Fig. 4.10 showed "2,000 epochs" in olive and Fig. 4.12 in brick: the spare color followed
    the label's position within its figure. Now the first figure's choice sticks."""
    from l2l.book.plotting import COLORS, SPARE, colors_for

    first = colors_for(["LSTM", "ADAM", "trained longer (test)", "wider (test)"])
    second = colors_for(["NAG", "grouped (test)", "wider (test)", "LSTM", "trained longer (test)"])
    assert second["wider (test)"] == first["wider (test)"]
    assert second["trained longer (test)"] == first["trained longer (test)"]
    assert second["grouped (test)"] not in {first["wider (test)"], first["trained longer (test)"]}
    assert second["NAG"] == COLORS["NAG"] and set(second.values()) - set(COLORS.values()) <= set(SPARE)
    # more variants than spare colors: a figure's colors stay distinct as long as the spares last
    many = colors_for([f"variant {k} (test)" for k in range(len(SPARE))])
    assert len(set(many.values())) == len(SPARE)


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
    fig, (a, b, c) = plt.subplots(1, 3)
    plot_curves({"ADAM": tight}, a)
    plot_curves({"ADAM": tight, "LSTM": wide}, b)
    plot_curves({"LSTM": Curve("LSTM", list(mean), [0.1, 0.1, 0.3, 0.05, 0.05])}, c, start=3)  # open at step 2 alone
    assert open_below(a) == [] and band_note(a) == "" and open_below(c) == []
    assert open_below(b) == ["LSTM"] and band_note(a, b) == BAND_NOTE
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
    from l2l.book.plotting import open_below, plot_curves

    fig, ax = plt.subplots()
    plot_curves({"LSTM": Curve("LSTM", [1.0, 0.1], [0.5, 0.5])}, ax, log=False)
    assert open_below(ax) == [] and not [l for l in ax.get_lines() if l.get_linestyle() == ":"]
    plt.close(fig)


def test_a_legend_below_sits_under_the_axes_clear_of_every_curve():
    from l2l.book.plotting import plot_curves

    fig, (ax, below) = plt.subplots(2, 1)
    curves = {k: Curve(k, list(np.linspace(2.0, 0.5 + 0.1 * i, 50)), [0.05] * 50) for i, k in enumerate("ABCDEFGH")}
    plot_curves(curves, ax)
    plot_curves(curves, below, legend="below")
    fig.canvas.draw()
    box, frame = below.get_legend().get_window_extent(), below.get_window_extent()
    assert box.y1 < frame.y0  # wholly under the axes' frame
    inside = ax.get_legend().get_window_extent()
    assert ax.get_window_extent().contains(inside.x0, inside.y0)  # the default stays inside
    plt.close(fig)


def test_a_curriculum_history_plots_a_validation_line_per_horizon_and_marks_each_move():
    """Validation losses at different horizons are not one curve: each horizon gets its own line,
    a dotted line marks the epoch where training moved on to a longer horizon, and the new horizon's
    line starts, hollow, at the mark its stage must beat."""
    import matplotlib.pyplot as plt

    from l2l.book.plotting import plot_training

    history = [{"epoch": 50, "train": 9.0, "val": 0.40, "steps": 100, "val_steps": 200},
               {"epoch": 100, "train": 8.0, "val": 0.35, "steps": 100, "val_steps": 200, "advanced_to": 200,
                "mark": 0.33},
               {"epoch": 150, "train": 7.0, "val": 0.30, "steps": 200, "val_steps": 500}]
    fig, ax = plt.subplots()
    plot_training(history, ax)
    lines = {l.get_label(): l for l in ax.get_lines() if not l.get_label().startswith("_")}
    assert list(lines) == ["validation loss at step 200", "validation loss at step 500"]
    assert list(lines["validation loss at step 200"].get_xdata()) == [50, 100]
    # the next stage's line starts at its mark: the best weights validated at 500 steps when it moved on
    assert list(zip(lines["validation loss at step 500"].get_xdata(),
                    lines["validation loss at step 500"].get_ydata())) == [(100, 0.33), (150, 0.30)]
    marks = [l for l in ax.get_lines() if l.get_label() == "_mark"]
    assert len(marks) == 1 and marks[0].get_markerfacecolor() == "white"
    assert list(marks[0].get_xdata()) == [100] and list(marks[0].get_ydata()) == [0.33]
    moves = [l for l in ax.get_lines() if l.get_linestyle() == ":"]
    assert len(moves) == 1 and list(moves[0].get_xdata()) == [100, 100]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["validation loss at step 200", "validation loss at step 500", "training meta-loss",
                      "its best weights when it moved on"]
    fig, ax = plt.subplots()  # a plain history: one validation line, as before
    plot_training([{k: v for k, v in h.items() if k in ("epoch", "train", "val")} for h in history], ax)
    assert [l.get_label() for l in ax.get_lines()] == ["validation final loss"]
    plt.close("all")


def test_the_sweep_figure_draws_each_trial_s_validation_and_the_reference():
    """One line per trial with validations, ordered and shaded by meta-learning rate, an unfinished
    trial saying how far it got; the reference dashed; trials without a validation left out."""
    import matplotlib.pyplot as plt

    from l2l.book.plotting import plot_sweep

    row = lambda k, lr, points, finished: {"trial": k, "meta_lr": lr, "epochs": points[-1][0] if points else 0,
                                           "finished": finished, "validation": points}
    result = {"rows": [row(0, 3e-3, [[50, 0.5], [100, 2.3]], False), row(1, 3e-4, [[50, 0.6], [100, 0.4]], True),
                       row(2, 1e-3, [], False)]}
    fig, ax = plt.subplots()
    plot_sweep(result, ax, reference=("the book's optimizer", [[50, 0.45], [100, 0.35]]))
    labels = [l.get_label() for l in ax.get_lines()]
    assert labels == ["trial 1 (meta-lr 0.0003)", "trial 0 (meta-lr 0.003, 100 epochs so far)", "the book's optimizer"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.5, 2.3] and ax.get_lines()[2].get_linestyle() == "--"
    assert ax.get_yscale() == "log"
    plt.close("all")


def test_the_search_rates_figure_draws_each_trial_at_its_rate_and_rings_each_winner():
    """Best validation against meta-learning rate, a series per search, hollow markers for trials still
    training, trials without a validation left out, each search's winner ringed, its range shaded."""
    import matplotlib.pyplot as plt

    from l2l.book.plotting import plot_search_rates

    row = lambda k, lr, best, finished: {"trial": k, "meta_lr": lr, "best_val": best, "finished": finished,
                                         "validation": [[50, best]] if best else []}
    first = {"range": [1e-4, 1e-2], "winner": 1, "complete": True,
             "rows": [row(0, 3e-4, 0.5, True), row(1, 9e-3, 0.26, True), row(2, 1e-3, None, False)]}
    second = {"range": [5e-3, 3e-2], "winner": 0, "complete": False, "rows": [row(0, 8e-3, 0.25, True), row(1, 2e-2, 2.3, False)]}
    fig, ax = plt.subplots()
    plot_search_rates({"first search": first, "second search": second}, ax)
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert list(lines["first search"].get_xdata()) == [3e-4, 9e-3] and list(lines["second search"].get_ydata()) == [0.25]
    assert list(lines["second search: still training"].get_xdata()) == [2e-2]
    assert lines["second search: still training"].get_markerfacecolor() == "none"
    ring = lines["a search's winner (lowest best validation)"]
    assert (list(ring.get_xdata()), list(ring.get_ydata())) == ([9e-3], [0.26])  # the unfinished search: none yet
    assert lines["first search"].get_color() != lines["second search"].get_color()
    spans = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]
    assert np.allclose(spans, [(1e-4, 1e-2), (5e-3, 3e-2)])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    plt.close("all")


def test_validation_curves_of_several_trainings_share_one_log_axis_each_in_its_own_color():
    import matplotlib.pyplot as plt

    from l2l.book.plotting import COLORS, plot_validations

    fig, ax = plt.subplots()
    plot_validations({"LSTM": [[50, 0.4], [100, 0.35]], "LSTM-searched": [[50, 0.5], [100, 0.3]],
                      "LSTM-10k": [[50, 0.6], [100, 0.3], [150, 0.25]]}, ax)
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["LSTM", "LSTM-searched", "LSTM-10k"]
    assert list(lines[2].get_xdata()) == [50, 100, 150] and list(lines[2].get_ydata()) == [0.6, 0.3, 0.25]
    assert lines[0].get_color() == COLORS["LSTM"] and len({l.get_color() for l in lines}) == 3
    assert ax.get_yscale() == "log"
    plt.close("all")


def test_log_axes_label_a_narrow_range_with_plain_numbers_and_a_wide_one_with_powers_of_ten():
    """A validation axis from 1.55 to 2 reads 1.6, 1.8, 2 (not 1.6×10⁰); losses from 1e-8 to 1e3
    keep their powers of ten."""
    import matplotlib.pyplot as plt

    from l2l.book.plotting import log_scale

    fig, (narrow, wide) = plt.subplots(1, 2)
    for ax, (low, high) in ((narrow, (1.55, 2.0)), (wide, (1e-8, 1e3))):
        ax.plot([0, 1], [low, high])
        log_scale(ax)
    fig.canvas.draw()
    labels = lambda ax: [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert set(labels(narrow)) >= {"1.6", "2"} and all("$" not in t for t in labels(narrow))
    assert labels(wide) and all("10^" in t for t in labels(wide)), labels(wide)
    plt.close("all")


def test_a_caption_says_which_means_leave_an_axis_the_chapter_cut():
    from l2l.book.plotting import band_note, plot_curves

    steady = Curve("ADAM", [2.0, 1.0, 0.5], [0.1, 0.1, 0.1], lr=0.1)
    blowing = Curve("L-BFGS", [2.0, 40.0, float("inf")], [0.1, 5.0, 0.0], lr=0.01)
    fig, (a, b) = plt.subplots(1, 2)
    plot_curves({"ADAM": steady, "L-BFGS": blowing}, a, title="left")
    plot_curves({"ADAM": steady}, b, title="right")
    assert band_note(a) == "" and band_note(a, b) == ""  # not cut: the axis holds every mean
    a.set_ylim(top=3)
    b.set_ylim(top=3)
    assert band_note(a) == "The loss axis stops at 3; L-BFGS's mean leaves it (up to 40)."  # the finite peak
    assert band_note(a, b) == "In the panel “left”, the loss axis stops at 3; L-BFGS's mean leaves it (up to 40)."
    plt.close(fig)


def test_the_architectures_figure_draws_a_line_per_depth_per_panel_rings_the_trained_network_and_marks_seeds():
    import matplotlib.pyplot as plt
    import torch

    from l2l.book.plotting import plot_architectures

    def curve(label, level, lr=None):
        return Curve.of(label, torch.full((4, 101), level) + 0.1 * torch.rand(4, 101), lr=lr)

    sweep = {(layers, hidden): {"LSTM": curve("LSTM", hidden / 100 * layers),
                                "LSTM seed 1": curve("LSTM seed 1", 0.3), "LSTM seed 2": curve("LSTM seed 2", 0.4),
                                "ADAM": curve("ADAM", 1.0, 0.1)}
             for layers in (1, 2) for hidden in (10, 20, 30)}
    fig, axes = plt.subplots(1, 2, sharey=True)
    plot_architectures(sweep, axes, ["LSTM", "ADAM"], others=("LSTM seed 1", "LSTM seed 2"))
    assert [ax.get_title() for ax in axes] == ["LSTM", "ADAM"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["1 hidden layer", "2 hidden layers", "seeds 1 and 2 (no bars)", "trained on"]
    ring = next(line for line in axes[0].get_lines() if line.get_label() == "trained on")
    assert list(ring.get_xdata()) == [20] and ring.get_ydata()[0] == sweep[1, 20]["LSTM"].mean[100]
    seeds = [line for line in axes[0].get_lines() if line.get_linestyle() == ":"]
    assert len(seeds) == 4 and all(line.get_markerfacecolor() == "none" for line in seeds)  # 2 seeds × 2 depths
    assert list(seeds[1].get_xdata()) == [10, 20, 30] and np.allclose(seeds[1].get_ydata(), sweep[2, 10]["LSTM seed 1"].mean[100], atol=0.1)
    assert not [line for line in axes[1].get_lines() if line.get_linestyle() == ":"]  # seeds only beside the LSTM
    plt.close("all")
