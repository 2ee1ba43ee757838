"""``python -m keras_art.compare``: runs and groups of repeats side by side.

    python -m keras_art.compare runs/gap-base runs/gap-384-128 --layout seed002
    python -m keras_art.compare runs/artist-cnn_rnn-seeds-0-1-2 runs/gap --out cmp

A thin wrapper over `keras_art.evaluation.compare`: it prints the layout's tables and
the paired tests (the first RUN_OR_GROUP is the baseline), and the report lands in
``--out`` (default ``comparisons/<name>-vs-<name>/``; ``report.html`` is the page
to open).
"""

from __future__ import annotations

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command


def build_parser() -> ArgumentParser:
    from keras_art.evaluation.compare_table import LAYOUTS
    from keras_art.models.run_reader import SPLITS

    p = ArgumentParser(
        prog="python -m keras_art.compare",
        description="Compare finished runs and groups of repeats (--seeds) on the "
        "same test images: scores with 95% intervals, paired tests, curves, "
        "per-class F1, confusion matrices.",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_OR_GROUP",
        help="run directories or groups of repeats; the first is the baseline",
    )
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--out", help="report folder (default: comparisons/A-vs-B)")
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="default",
        help="the tables' layout: this project's, or seed 002's / seed 004's",
    )
    p.add_argument(
        "--top-k", type=int, help="top-k column (default: 2 for seed002, else 5)"
    )
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="resamples for intervals and tests"
    )
    return p


# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "runs": "RUN_OR_GROUP",
    "run_dir": "RUN_OR_GROUP",
    "group_dir": "RUN_OR_GROUP",
    "split": "--split",
    "out": "--out",
    "layout": "--layout",
    "top_k": "--top-k",
    "bootstrap": "--bootstrap",
}


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        quiet_tensorflow()
        from keras_art.evaluation import compare

        result = compare(
            args.runs,
            split=args.split,
            out=args.out,
            layout=args.layout,
            top_k=args.top_k,
            bootstrap=args.bootstrap,
        )
        _print(result)
        return 0

    return run_command(_run, flags=FLAGS)


def _print(result: dict) -> None:
    from keras_art.evaluation.compare_table import (
        layout_tables,
        tests_table,
        text_table,
    )

    for task in result["tasks"]:
        n = result["tasks"][task]["n"]
        print(f"\n== {task}: {n} {result['split']} images ==")
        for title, table in layout_tables(result["layout"], result, task):
            print(f"\n{title}\n{text_table(table)}")
        tests = tests_table(result, task)
        if tests is not None:
            print(f"\nPaired tests against {result['baseline']}\n{text_table(tests)}")
    print(f"\nreport: {result['out']}/report.html")


if __name__ == "__main__":
    raise SystemExit(main())
