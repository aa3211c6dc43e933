"""The book runner: which notebooks the book lists, and which run only as drafts at smoke scale."""

from l2l.book.runner import NOTEBOOKS, chapters, drafts


def test_chapters_follow_the_toc_and_drafts_are_the_rest(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("root: book/intro\nchapters:\n  - file: book/02_mnist\n  - file: book/01_quadratics\n"
                   "  - file: book/references\n")
    assert chapters(toc) == ["02_mnist", "01_quadratics"]  # toc order; pages without a notebook skipped
    rest = drafts(toc)
    assert "01_quadratics" not in rest and "02_mnist" not in rest
    assert sorted(chapters(toc) + rest) == sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
