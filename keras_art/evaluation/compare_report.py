"""The comparison report: ``report.md`` and ``report.html`` in the evaluation
report's style.

`build_compare_report` turns the comparison's result (what ``comparison.json``
holds, plus its figures) into one `CompareReport`: data only, rendered by
``templates/compare.md.j2`` and ``templates/compare.html.j2`` in the same order:
what was compared, the layout's tables, the paired tests, then per task the
per-class F1 table and differences, the confusion matrices side by side and each
group's repeats; then the overlaid training curves. ``report.html`` is one
self-contained page (images embedded, inline CSS), as the evaluation report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from keras_art.atomic_files import atomic_write_bytes
from keras_art.evaluation.compare_table import (
    ci_cell,
    fmt,
    layout_tables,
    tests_table,
)
from keras_art.evaluation.report import MISSING, Figure, Table, encode_page, render_page


@dataclass
class TaskPart:
    name: str
    tables: list[tuple[str, Table]]
    tests: Table | None
    per_class: Table
    deltas: Figure | None
    confusions: list[Figure]
    repeats: list[tuple[str, Table]] = field(default_factory=list)


@dataclass
class CompareReport:
    title: str
    facts: list[tuple[str, str]]
    entries: Table
    notes: list[str]
    tasks: list[TaskPart]
    curves: Figure | None


def _figure(folder: Path, rel: str | None, caption: str) -> Figure | None:
    if not rel:
        return None
    return Figure(rel, folder / rel, caption, caption)


def _entries_table(result: dict) -> Table:
    rows = []
    for info in result["entries"]:
        kind = f"group of {len(info['runs'])}" if info["group"] else "run"
        seeds = ", ".join(str(s) for s in info.get("seeds") or []) or MISSING
        rows.append(
            [
                info["name"],
                kind,
                seeds,
                str(info.get("head") or MISSING),
                str(info.get("backbone") or MISSING),
                info["path"],
            ]
        )
    header = ["model", "kind", "train seeds", "head", "backbone", "folder"]
    return Table(header, rows, name_columns=6)


def _per_class_table(t: dict) -> Table:
    entries = t["entries"]
    header = ["class", "support", *(f"F1 {e['name']}" for e in entries)]
    header += [f"\u0394 {e['name']}" for e in entries[1:]]
    rows = []
    base = entries[0]["per_class_f1"]
    for c, name in enumerate(t["classes"]):
        row = [name, str(entries[0]["support"][c])]
        row += [fmt(e["per_class_f1"][c]) for e in entries]
        row += [f"{e['per_class_f1'][c] - base[c]:+.3f}" for e in entries[1:]]
        rows.append(row)
    return Table(header, rows)


def _repeats_tables(t: dict) -> list[tuple[str, Table]]:
    out = []
    for e in t["entries"]:
        if not e["group"]:
            continue
        header = ["repeat", "seed", "top-1", "report 95% CI", "macro-F1"]
        header.append("report 95% CI")
        rows = [
            [
                Path(r["run"]).name,
                str(r["seed"]),
                fmt(r["top1"]),
                _ci_or_missing(r["report_ci"].get("top1")),
                fmt(r["macro_f1"]),
                _ci_or_missing(r["report_ci"].get("macro_f1")),
            ]
            for r in e["per_repeat"]
        ]
        out.append((e["name"], Table(header, rows, name_columns=2)))
    return out


def _confusion_caption(entry: dict, task: str) -> str:
    caption = f"{entry['name']}: {task}"
    if entry["repeats"] > 1:
        caption += f", its {entry['repeats']} repeats summed (support counted each)"
    return caption


def _ci_or_missing(interval) -> str:
    return ci_cell(interval) if interval else MISSING


def _notes(result: dict) -> list[str]:
    boot = result["bootstrap"]
    notes = [
        f"95% intervals: bootstrap over the {result['n_images']} {result['split']} "
        f"images ({boot['n_resamples']:,} resamples, seed {boot['seed']}); for a "
        "group, of the mean over its repeats, every repeat scored on the same "
        "resample. \u00b1: the standard deviation over a group's repeats (what "
        "another training seed changes).",
        f"Paired tests against the baseline ({result['baseline']}, the first model "
        "given) on the same images: top-1 by McNemar's test for two single runs "
        "(exact binomial below 25 discordant images, else chi-square with "
        "continuity correction; 'b vs c': the images only the baseline got right vs "
        "only the other), else by paired bootstrap; macro-F1 by a two-sided "
        "paired bootstrap; Welch's t over the repeats when both are groups. "
        "p-values are not corrected for multiple comparisons.",
        "images/s: evaluate's own pass over the split (decode, resize, model) on "
        "the machine that evaluated; python -m keras_art.bench serve measures "
        "throughput.",
    ]
    if result.get("split_note"):
        notes.insert(0, result["split_note"])
    return notes


def build_compare_report(result: dict, folder: str | os.PathLike) -> CompareReport:
    """The report of ``result`` (the comparison, with ``"images"``: figure paths
    relative to ``folder``)."""
    folder = Path(folder)
    images = result.get("images") or {}
    parts = []
    for task, t in result["tasks"].items():
        parts.append(
            TaskPart(
                name=task,
                tables=layout_tables(result["layout"], result, task),
                tests=tests_table(result, task),
                per_class=_per_class_table(t),
                deltas=_figure(
                    folder,
                    images.get(f"f1_deltas_{task}"),
                    f"per-class F1 against {result['baseline']}: {task}",
                ),
                confusions=[
                    _figure(folder, rel, _confusion_caption(e, task))
                    # One per entry, in order; none when figures were left out.
                    for rel, e in zip(
                        images.get(f"confusion_{task}", []), t["entries"], strict=False
                    )
                ],
                repeats=_repeats_tables(t),
            )
        )
    names = ", ".join(info["name"] for info in result["entries"])
    return CompareReport(
        title=f"Comparison: {names} ({result['split']} split)",
        facts=[
            ("split", result["split"]),
            ("images", f"{result['n_images']:,}"),
            ("layout", result["layout"]),
            ("baseline", result["baseline"]),
            ("keras_art version", result.get("keras_art_version") or MISSING),
        ],
        entries=_entries_table(result),
        notes=_notes(result),
        tasks=parts,
        curves=_figure(folder, images.get("curves"), "training curves, overlaid"),
    )


def write_compare_reports(result: dict, folder: str | os.PathLike) -> list[Path]:
    """``report.md`` and ``report.html`` of ``result`` in ``folder``."""
    folder = Path(folder)
    report = build_compare_report(result, folder)
    md = render_page("compare.md.j2", r=report).rstrip() + "\n"
    html = render_page("compare.html.j2", r=report)
    return [
        atomic_write_bytes(folder / "report.md", encode_page(md)),
        atomic_write_bytes(folder / "report.html", encode_page(html)),
    ]
