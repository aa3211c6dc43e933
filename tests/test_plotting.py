

def test_labels_without_a_book_color_get_distinct_spare_colors():
    from l2l.book.plotting import COLORS, colors_for

    colors = colors_for(["LSTM", "conv LSTM silenced", "fc LSTM silenced", "one LSTM", "ADAM (lr 0.1)"])
    assert colors["LSTM"] == COLORS["LSTM"] and colors["ADAM (lr 0.1)"] == COLORS["ADAM"]
    assert len(set(colors.values())) == 5
