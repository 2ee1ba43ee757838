"""The comparison's tables, in the layout of a seed's own tables.

``default``: scores with their 95% intervals, then size, compute and training.
``seed004``: its metrics table (Model, Accuracy, Precision, Recall, F1: weighted
averages, as scikit-learn's weighted precision/recall/F1, so recall equals accuracy)
and its models table (parameters, model size, GFLOPs). ``seed002``: its Table 1
(Model, Dense 1, Dense 2, Top 1, Top 2, F1 = macro-F1), grouped by head, each
head's first entry (in the order given) as its baseline and the others by F1, best
first. Every layout shows a group's score as ``mean ± sd`` over its repeats and
every score's 95% bootstrap interval. The tables are `keras_art.evaluation.report`
``Table``s: the report renders them, and `text_table` prints them.
"""

from __future__ import annotations

from keras_art.errors import ParameterError
from keras_art.evaluation.report import MISSING, Table

LAYOUTS = ("default", "seed002", "seed004")
# A layout's own top-k (seed 002's Table 1 has top-2); else the caller's.
LAYOUT_TOP_K = {"seed002": 2}


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ParameterError(
            f"{{layout}} {layout}: choose one of {', '.join(LAYOUTS)}."
        )
    return layout


def fmt(value, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def fmt_p(p) -> str:
    if p is None:
        return MISSING
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def score_cell(entry: dict, key: str, *, ci: bool = False) -> str:
    """``0.812``, ``0.812 ± 0.013`` for a group; with ``ci`` its interval after."""
    text = fmt(entry["mean"][key])
    if entry["sd"] is not None:
        text += f" \u00b1 {fmt(entry['sd'][key])}"
    if ci:
        text += f" {ci_cell(entry['ci'][key])}"
    return text


def ci_cell(interval) -> str:
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def fact_cell(fact: dict, kind: str) -> str:
    mean, sd = fact["mean"], fact["sd"]
    if mean is None:
        return MISSING
    text = {
        "params": lambda v: f"{v / 1e6:.2f}M",
        "gflops": lambda v: f"{v:.3f}",
        "size_mb": lambda v: f"{v:.1f}",
        "epochs": lambda v: f"{v:.3g}",
        "train_s": lambda v: f"{v:.0f} s",
        "images_per_s": lambda v: f"{v:.1f}",
    }[kind]
    # Repeats share the model: its size shows once; a spread that rounds to 0 too.
    same = kind in ("params", "gflops", "size_mb") or not sd or text(sd) == text(0)
    return text(mean) + ("" if same else f" \u00b1 {text(sd)}")


def layout_tables(layout: str, result: dict, task: str) -> list[tuple[str, Table]]:
    """``(title, Table)`` per table of ``layout`` for ``task``."""
    t = result["tasks"][task]
    facts = result["facts"]
    k = result["top_k"]
    if layout == "seed004":
        return _seed004(t, facts, result["entries"])
    if layout == "seed002":
        return [("Table 1", _seed002(t, result["entries"], k))]
    return _default(t, facts, k)


def _default(t: dict, facts: list[dict], k: int) -> list[tuple[str, Table]]:
    keys = (("top1", "top-1"), ("topk", f"top-{k}"), ("macro_f1", "macro-F1"))
    keys += (("weighted_f1", "weighted-F1"),)
    header = ["model", "runs", *(f"{label} [95% CI]" for _, label in keys)]
    rows = [
        [
            e["name"],
            str(e["repeats"]),
            *(score_cell(e, key, ci=True) for key, _ in keys),
        ]
        for e in t["entries"]
    ]
    cost_header = ["model", "params", "GFLOPs", "size MB", "epochs", "train time"]
    cost_header.append("images/s")
    kinds = ("params", "gflops", "size_mb", "epochs", "train_s", "images_per_s")
    cost_rows = [
        [e["name"], *(fact_cell(f[kind], kind) for kind in kinds)]
        for e, f in zip(t["entries"], facts, strict=True)
    ]
    return [
        ("Scores", Table(header, rows)),
        ("Size, compute and training", Table(cost_header, cost_rows)),
    ]


def _seed004(t: dict, facts: list[dict], entries: list[dict]):
    keys = ("top1", "weighted_precision", "top1", "weighted_f1")
    header = ["Model", "Accuracy", "Precision", "Recall", "F1"]
    rows = [
        [e["name"], *(score_cell(e, k, ci=True) for k in keys)] for e in t["entries"]
    ]
    model_rows = [
        [
            e["name"],
            str(info.get("backbone") or MISSING),
            fact_cell(f["params"], "params"),
            fact_cell(f["size_mb"], "size_mb") + " MB",
            fact_cell(f["gflops"], "gflops"),
        ]
        for e, f, info in zip(t["entries"], facts, entries, strict=True)
    ]
    return [
        ("Metrics (weighted averages)", Table(header, rows)),
        (
            "Models",
            Table(
                ["Model", "Architecture", "Parameters", "Model Size", "GFLOPs"],
                model_rows,
                name_columns=2,
            ),
        ),
    ]


def _seed002(t: dict, entries: list[dict], k: int) -> Table:
    by_head: dict[str, list[int]] = {}
    for i, info in enumerate(entries):
        by_head.setdefault(str(info.get("head") or "?"), []).append(i)
    rows = []
    for head, members in by_head.items():
        base, rest = members[0], members[1:]
        rest.sort(key=lambda i: -t["entries"][i]["mean"]["macro_f1"])
        for rank, i in enumerate([base, *rest]):
            e = t["entries"][i]
            label = f"{head.upper()}: {e['name']}" if rank == 0 else f"{rank}: "
            label += "" if rank == 0 else e["name"]
            scores = [
                score_cell(e, key, ci=True) for key in ("top1", "topk", "macro_f1")
            ]
            rows.append([label, *_dense_cells(entries[i].get("dense_units")), *scores])
    header = ["Model", "Dense 1", "Dense 2", "Top 1", f"Top {k}", "F1"]
    return Table(header, rows, name_columns=3)


def _dense_cells(units: list[int] | None) -> list[str]:
    """Seed 002's Dense 1 and Dense 2: "Base" for a head without dense blocks, a
    dash for a head that has none to set (cnn_rnn)."""
    if units is None:
        return [MISSING, MISSING]
    if not units:
        return ["Base", "Base"]
    return [str(u) for u in units[:2]] + [MISSING] * (2 - min(len(units), 2))


def tests_table(result: dict, task: str) -> Table | None:
    """Each entry against the baseline: differences, intervals and p-values."""
    tests = result["tasks"][task]["tests"]
    if not tests:
        return None
    header = ["model", "vs", "\u0394 top-1", "p", "test"]
    header += ["\u0394 macro-F1 [95% CI]", "p", "Welch p (repeats)"]
    rows = []
    for test in tests:
        top1, f1 = test["top1"], test["macro_f1"]
        welch = f1.get("welch_p_value")
        rows.append(
            [
                test["entry"],
                test["baseline"],
                f"{top1['difference']:+.3f}",
                fmt_p(top1["p_value"]),
                _method(top1),
                f"{f1['difference']:+.3f} {ci_cell(f1['ci'])}",
                fmt_p(f1["p_value"]),
                fmt_p(welch),
            ]
        )
    return Table(header, rows, name_columns=2)


def _method(test: dict) -> str:
    """The test's short name; McNemar's with the images only the baseline / only
    this model got right (the report's notes name the tests in full)."""
    if "a_only" not in test:
        return test["method"]
    kind = "exact" if "exact" in test["method"] else "\u03c7\u00b2"
    if test["a_only"] + test["b_only"] == 0:
        kind = "no discordant images"
    return f"McNemar {kind}, {test['a_only']} vs {test['b_only']}"


def text_table(table: Table) -> str:
    """``table`` as aligned plain text (names left, numbers right)."""
    cells = [table.header, *table.rows]
    widths = [max(len(str(r[c])) for r in cells) for c in range(len(table.header))]

    def line(row):
        return "  ".join(
            str(v).ljust(w) if c < table.name_columns else str(v).rjust(w)
            for c, (v, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join(line(r) for r in cells)
