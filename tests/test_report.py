"""What chapters print: tables and the sentences computed from the numbers."""

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


def test_ranking_says_where_the_learned_optimizer_ends():
    text = ranking(_curves())
    assert "ends at 0.100, below the best tuned baseline (ADAM, 0.300)" in text
    assert "do not overlap" in text and "lowest of all curves at 1 of the 2 steps" in text
    worse = _curves()
    worse["LSTM"] = Curve("LSTM", [2.0, 1.0, 0.31], [0.0, 0.1, 0.05])
    assert "above the best tuned baseline (ADAM, 0.300), but the 95% intervals overlap" in ranking(worse)


def test_versus_paper_ratios():
    assert versus_paper(_curves(), {"LSTM": 0.05, "ADAM": 0.1}) == \
        "Every optimizer ends above the paper's value, by 2.0× to 3.0×."


def test_small_losses_keep_two_significant_digits():
    from l2l.book.report import loss_text

    assert loss_text(0.5213) == "0.521"
    assert loss_text(0.000203) == "0.0002"
    assert loss_text(0.00504) == "0.005"
    assert loss_text(0.0) == "0.000"
