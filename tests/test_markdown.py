"""One markdown table layout for the evaluation report, the search summary and the
dataset statistics: names left, numbers right, every cell escaped."""

from data_scripts.dataset_stats import counts_table
from keras_art.markdown import markdown_table
from tuning.hypermodel import OBJECTIVE
from tuning.results import summary_markdown


def test_table_aligns_and_escapes_cells():
    table = markdown_table(["class", "n"], [["a|b *c*", 3], ["x\ny", 1.5], ["<i>", ""]])
    assert table.splitlines() == [
        "| class | n |",
        "| --- | ---: |",
        "| a\\|b \\*c\\* | 3 |",  # a bare | would split the cell
        "| x y | 1.5 |",  # a newline would end the row
        "| \\<i> |  |",
    ]


def test_dataset_counts_use_the_table():
    rows = [
        {"task": "artist", "class": "a|b", "index": 0, "train": 2, "total": 2},
        {"task": "artist", "class": "c", "index": 1, "val": 1, "total": 1},
    ]
    assert counts_table(rows) == markdown_table(
        ["task", "class", "train", "total", "val"],
        [["artist", "a|b", 2, 2, ""], ["artist", "c", "", 1, 1]],
        name_columns=2,
    )
    assert counts_table([]) == ""


def test_search_summary_uses_the_table():
    row = {"trial": "00", "status": "COMPLETED", "head": "gap", OBJECTIVE: 0.5}
    row |= {"val_top1": 0.6, "val_top5": 0.9, "epochs": 2.0, "seconds": 9.4}
    settings = {"project": "p", "tuner": "grid", "stage": "head", "space": "s"}
    settings |= {"task": "artist", "folder": "search/p"}
    summary = summary_markdown([row], ["head"], settings, row)
    header = ["rank", "trial", "head", "val top-1", "val top-5", "val macro-F1"]
    table = markdown_table(
        [*header, "epochs", "s"],
        [[1, "00", "gap", 0.6, 0.9, 0.5, 2, 9]],
        name_columns=8,
    )
    assert table in summary
