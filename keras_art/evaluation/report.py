"""The evaluation report: ``report.md`` for a terminal, ``report.html`` for a browser.

`build_report` turns the ``result`` dict that `keras_art.evaluation.evaluate` writes to
``metrics.json`` (plus its ``"images"``: PNG paths relative to the report's folder)
into one `Report`: data only (formatted numbers, tables, figure paths, notes). The
two jinja2 templates shipped beside this module, ``templates/report.md.j2`` and
``templates/report.html.j2``, render that one model, so a section is added once and
both files show it, in the same order: run and split, headline table (each task and
the multi-task "Combined" row, bootstrap intervals), every score's bootstrap
interval (accuracy, macro and weighted precision, recall, F1), test-time
augmentation side by side with the plain numbers, calibration before and after
temperature scaling (ECE, classwise ECE, NLL, Brier per task), class matching for
another collection, then per task the per-class table, the confusion matrix beside
its most-confused pairs, the reliability diagram, the galleries; then the training
curves and Grad-CAM figures. ``report.html`` is one self-contained file: the images
are embedded as base64 data URIs, the CSS is inline, nothing is fetched.

Per-class rows come from ``result["per_task"][task]["per_class"]`` when present,
else from ``per_class_<task>.csv`` or (single task) ``per_class.csv`` beside the
report.
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe

from keras_art.atomic_files import atomic_write_bytes
from keras_art.evaluation.calibration import CALIBRATION_DEFINITION
from keras_art.markdown import markdown_table, md_escape

MISSING = "\u2014"  # em dash for a value the result does not have
_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_TOPK = re.compile(r"^top(\d+)$")


# --------------------------------------------------------------------------------
# What the report shows, independent of the markup


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return MISSING if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _fmt_ci(interval: Any) -> str:
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return MISSING
    return f"[{_fmt(interval[0])}, {_fmt(interval[1])}]"


def _topk_keys(rows: list[dict]) -> list[str]:
    """``top1, top2, top5, ...`` found in any row, in numeric order."""
    ks = {int(m.group(1)) for row in rows for key in row if (m := _TOPK.match(key))}
    return [f"top{k}" for k in sorted(ks | {1})]


def _metric_label(key: str) -> str:
    m = _TOPK.match(key)
    if m:
        return f"top-{m.group(1)}"
    return {
        "macro_f1": "macro-F1",
        "weighted_f1": "weighted-F1",
        "loss": "loss",
        "n": "n",
    }.get(key, key)


def _tasks(result: dict) -> list[str]:
    tasks = list(result.get("tasks") or [])
    return tasks + [t for t in result.get("per_task", {}) if t not in tasks]


def _headline(result: dict) -> tuple[list[str], list[list[str]]]:
    per_task = result.get("per_task", {})
    rows = [(task, per_task.get(task, {})) for task in _tasks(result)]
    if result.get("combined"):
        rows.append(("Combined", result["combined"]))
    metrics = [
        *_topk_keys([m for _, m in rows]),
        "macro_f1",
        "weighted_f1",
        "loss",
    ]
    header = [
        "task",
        "n",
        *(_metric_label(k) for k in metrics),
        "top-1 95% CI",
        "macro-F1 95% CI",
    ]
    body = []
    for name, m in rows:
        boot = m.get("bootstrap") or {}
        body.append(
            [
                name,
                _fmt(m.get("n")),
                *(_fmt(m.get(k)) for k in metrics),
                _fmt_ci(boot.get("top1")),
                _fmt_ci(boot.get("macro_f1")),
            ]
        )
    return header, body


# The scores with bootstrap intervals, in table order (seed 004 reports accuracy,
# precision, recall and F1; its precision/recall/F1 are the weighted ones).
_INTERVAL_METRICS = {
    "top1": "top-1 accuracy",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "macro_f1": "macro-F1",
    "weighted_precision": "weighted precision",
    "weighted_recall": "weighted recall",
    "weighted_f1": "weighted-F1",
}


def _intervals(result: dict) -> tuple[list[str], list[list[str]]] | None:
    """Per task and score: the estimate and its bootstrap 95% interval (None when
    no task has intervals beyond the headline's, as in older metrics.json)."""
    per_task = result.get("per_task", {})
    body = []
    for task in _tasks(result):
        m = per_task.get(task, {})
        boot = m.get("bootstrap") or {}
        if "macro_precision" not in boot:
            continue
        body += [
            [task, label, _fmt(m.get(key)), _fmt_ci(boot.get(key))]
            for key, label in _INTERVAL_METRICS.items()
        ]
    return (["task", "score", "estimate", "95% CI"], body) if body else None


def _bootstrap_note(result: dict) -> str:
    for m in result.get("per_task", {}).values():
        boot = m.get("bootstrap")
        if boot:
            return (
                f"95% intervals: bootstrap over the labelled images, "
                f"{_fmt(boot.get('n_resamples'))} resamples, seed {boot.get('seed')}."
            )
    return ""


def _tta_table(result: dict) -> tuple[list[str], list[list[str]]] | None:
    per_task = result.get("per_task", {})
    tasks = [t for t in _tasks(result) if per_task.get(t, {}).get("tta")]
    if not tasks:
        return None
    variants = [("plain", None), ("TTA mean of probabilities", "mean")]
    variants.append(("TTA majority vote", "vote"))
    sources = [per_task[t] for t in tasks]
    sources += [per_task[t]["tta"].get(v) or {} for t in tasks for _, v in variants[1:]]
    metrics = [*_topk_keys(sources), "macro_f1", "weighted_f1"]
    header = ["task", "predictions", *(_metric_label(k) for k in metrics)]
    body = []
    for task in tasks:
        plain = per_task[task]
        for label, key in variants:
            m = plain if key is None else (plain["tta"].get(key) or {})
            body.append([task, label, *(_fmt(m.get(k)) for k in metrics)])
    return header, body


def _tta_note(result: dict) -> str:
    tta = result.get("tta") or {}
    if not tta:
        return ""
    sizes = ", ".join(str(s) for s in tta.get("sizes") or []) or MISSING
    flip = "with horizontal flip" if tta.get("flip") else "no flip"
    return f"Predictions averaged over sizes {sizes} px, {flip}."


_CALIBRATION_KEYS = ("ece", "classwise_ece", "nll", "brier")


def _calibration_table(result: dict) -> tuple[list[str], list[list[str]]] | None:
    """Per task, the calibration metrics before and after temperature scaling."""
    per_task = result.get("per_task", {})
    body = []
    for task in _tasks(result):
        cal = per_task.get(task, {}).get("calibration")
        if not cal:
            continue
        body.append(
            [task, "before (T = 1)", _fmt(1.0)]
            + [_fmt(cal["before"].get(k)) for k in _CALIBRATION_KEYS]
        )
        after = cal.get("after")
        if after:
            body.append(
                [task, "after", _fmt(cal.get("temperature"))]
                + [_fmt(after.get(k)) for k in _CALIBRATION_KEYS]
            )
    if not body:
        return None
    header = ["task", "probabilities", "T", "ECE", "classwise ECE", "NLL", "Brier"]
    return header, body


def _calibration_note(result: dict) -> str:
    """Where the temperatures come from, a warning on val, the definitions."""
    found = [
        m["calibration"]
        for m in result.get("per_task", {}).values()
        if m.get("calibration")
    ]
    if not found:
        return ""
    note = f"Temperatures: {found[0].get('source', MISSING)}. "
    if str(result.get("split", "")) == "val":
        note += "They were fitted on this split: the after numbers are in-sample. "
    return note + CALIBRATION_DEFINITION


def _per_class_rows(result: dict, task: str, folder: Path) -> list[dict]:
    rows = result.get("per_task", {}).get(task, {}).get("per_class")
    if rows:
        return list(rows)
    names = [f"per_class_{task}.csv"]
    if len(_tasks(result)) == 1:
        names.append("per_class.csv")
    for name in names:
        file = folder / name
        if file.is_file():
            with open(file, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh))
    return []


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _per_class_table(rows: list[dict], split: str) -> tuple[list[str], list[list[str]]]:
    """The per-class table; a class without images in ``split`` has no recall or
    F1 (scikit-learn's 0 would read as a class the model always misses)."""
    header = ["class", "precision", "recall", "F1", "support"]
    body = []
    for row in rows:
        support = _number(row.get("support"))
        scores = [_fmt(_number(row.get(k))) for k in ("precision", "recall", "f1")]
        if support == 0:
            scores[1:] = [f"no {split} images"] * 2
        body.append(
            [
                str(row.get("class", "")),
                *scores,
                _fmt(int(support)) if support is not None else MISSING,
            ]
        )
    return header, body


def _confused_table(pairs: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["true", "predicted as", "count", "share of true"]
    body = [
        [
            str(p.get("true", "")),
            str(p.get("predicted", "")),
            _fmt(p.get("count")),
            _fmt(p.get("rate")),
        ]
        for p in pairs
    ]
    return header, body


def _matching(result: dict) -> dict | None:
    matching = result.get("class_matching")
    if not matching:
        return None
    return {
        "matched": [(str(a), str(b)) for a, b in matching.get("matched", [])],
        "unmatched_data": [str(s) for s in matching.get("unmatched_data", [])],
        "unmatched_model": [str(s) for s in matching.get("unmatched_model", [])],
    }


def _matching_summary(matching: dict) -> str:
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 'es'}"

    return (
        f"{count(len(matching['matched']), 'class')} matched by normalised name; "
        f"left out: {count(len(matching['unmatched_data']), 'data class')}, "
        f"{count(len(matching['unmatched_model']), 'model class')}."
    )


def _run_facts(result: dict) -> list[tuple[str, str]]:
    facts = [
        ("run", result.get("run")),
        ("split", result.get("split")),
        ("checkpoint", result.get("checkpoint")),
        ("tasks", ", ".join(str(t) for t in _tasks(result))),
        ("images", result.get("n_images")),
        ("image source", (result.get("image_source") or {}).get("description")),
        ("data", result.get("data")),
        ("format", result.get("format")),
        ("seconds", result.get("seconds")),
        ("keras_art version", result.get("keras_art_version")),
    ]
    return [
        (k, _fmt(v, 1) if isinstance(v, float) else _fmt(v))
        for k, v in facts
        if v not in (None, "")
    ]


def _images(result: dict) -> dict:
    return dict(result.get("images") or {})


def _task_images(images: dict, task: str) -> list[tuple[str, str]]:
    keys = [
        (f"top_losses_{task}", "Top losses: the images the model got most wrong"),
        (f"audit_{task}", "Label audit: the most suspicious labels"),
    ]
    return [(title, images[key]) for key, title in keys if images.get(key)]


def _other_images(images: dict, tasks: list[str]) -> list[tuple[str, str]]:
    """Images under keys the report does not place elsewhere (never dropped)."""
    known = {"curves", "gradcam"}
    for task in tasks:
        known |= {f"confusion_{task}", f"top_losses_{task}", f"audit_{task}"}
        known.add(f"reliability_{task}")
    return [(k, v) for k, v in images.items() if k not in known and v]


def _gradcam(images: dict) -> list[str]:
    value = images.get("gradcam") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _title(result: dict) -> str:
    run = Path(str(result.get("run") or "")).name or "run"
    return f"Evaluation: {run} ({result.get('split', '?')} split)"


def _encode(text: str) -> bytes:
    # Class names decoded from file names may hold lone surrogates.
    return text.encode("utf-8", errors="backslashreplace")


# --------------------------------------------------------------------------------
# The report model: data only (strings already formatted, file paths), which both
# templates render; a section or number added here shows in report.md and
# report.html alike.


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    name_columns: int = 1  # left-aligned name columns; the rest are numbers
    total_row: bool = False  # the last row sums up the others (the Combined row)
    # Per row, a value in [0, 1] drawn as a bar before the cell in ``bar_column``
    # (HTML only: markdown has no bars).
    bars: list[float | None] = field(default_factory=list)
    bar_column: int | None = None


@dataclass
class Figure:
    path: str  # as the result names it: relative to the report's folder, or absolute
    file: Path  # where the image is read from to embed it
    caption: str  # the HTML caption and alt text
    alt: str  # the markdown alt text
    title: str = ""  # the heading above a gallery


@dataclass
class Matching:
    summary: str
    table: Table
    left_out: list[tuple[str, list[str]]]  # (label, class names)


@dataclass
class TaskSection:
    name: str
    per_class: Table | None
    confusion: Figure | None
    most_confused: Table | None
    galleries: list[Figure]
    report_text: str
    reliability: Figure | None = None


@dataclass
class Report:
    title: str
    split: str
    facts: list[tuple[str, str]]
    split_note: str
    warnings: list[str]
    headline: Table
    bootstrap_note: str
    intervals: Table | None
    combined_definition: str
    tta_note: str
    tta: Table | None
    calibration_note: str
    calibration: Table | None
    matching: Matching | None
    tasks: list[TaskSection]
    curves: Figure | None
    gradcam: list[Figure]
    other_figures: list[Figure]


def _fig(folder: Path, rel: Any, caption: str, alt: str, title: str = "") -> Figure:
    rel = str(rel)
    file = Path(rel) if Path(rel).is_absolute() else folder / rel
    return Figure(rel, file, caption, alt, title)


def _f1_bars(rows: list[dict]) -> list[float | None]:
    return [
        None
        if (f1 := _number(row.get("f1"))) is None or _number(row.get("support")) == 0
        else max(0.0, min(1.0, f1))
        for row in rows
    ]


def _task_section(result: dict, task: str, images: dict, folder: Path) -> TaskSection:
    metrics = result.get("per_task", {}).get(task, {})
    per_class = None
    if rows := _per_class_rows(result, task, folder):
        per_class = Table(
            *_per_class_table(rows, str(result.get("split", "?"))),
            bars=_f1_bars(rows),
            bar_column=3,
        )
    confusion, pairs = images.get(f"confusion_{task}"), metrics.get("most_confused")
    if confusion:
        caption = f"confusion matrix: {task}"
        confusion = _fig(folder, confusion, caption, f"confusion {task}")
    return TaskSection(
        name=str(task),
        per_class=per_class,
        confusion=confusion or None,
        most_confused=Table(*_confused_table(pairs), name_columns=2) if pairs else None,
        galleries=[
            _fig(folder, rel, f"{title}: {task}", title, title)
            for title, rel in _task_images(images, task)
        ],
        report_text=str(metrics.get("report_text") or ""),
        reliability=_fig(
            folder, rel, f"reliability diagram: {task}", f"reliability {task}"
        )
        if (rel := images.get(f"reliability_{task}"))
        else None,
    )


def build_report(result: dict, folder: str | os.PathLike) -> Report:
    """The report of ``result`` (what `evaluate` writes to ``metrics.json``, plus its
    ``"images"``) whose images and per-class CSVs lie in ``folder``."""
    folder = Path(folder)
    images, tasks = _images(result), _tasks(result)
    header, body = _headline(result)
    matching = None
    if found := _matching(result):
        matching = Matching(
            summary=_matching_summary(found),
            table=Table(
                ["data class", "model class"],
                [list(pair) for pair in found["matched"]],
                name_columns=2,
            ),
            left_out=[
                ("Data classes left out", found["unmatched_data"]),
                ("Model classes with no data", found["unmatched_model"]),
            ],
        )
    tta = _tta_table(result)
    intervals = _intervals(result)
    calibration = _calibration_table(result)
    curves = images.get("curves")
    return Report(
        title=_title(result),
        split=str(result.get("split", "?")),
        facts=_run_facts(result),
        split_note=str(result.get("split_note") or ""),
        warnings=[str(w) for w in result.get("warnings") or []],
        headline=Table(header, body, total_row=bool(result.get("combined"))),
        bootstrap_note=_bootstrap_note(result),
        intervals=Table(*intervals, name_columns=2) if intervals else None,
        combined_definition=str(result.get("combined", {}).get("definition") or ""),
        tta_note=_tta_note(result),
        tta=Table(*tta, name_columns=2) if tta else None,
        calibration_note=_calibration_note(result),
        calibration=Table(*calibration, name_columns=2) if calibration else None,
        matching=matching,
        tasks=[_task_section(result, task, images, folder) for task in tasks],
        curves=_fig(folder, curves, "training curves", "training curves")
        if curves
        else None,
        gradcam=[
            _fig(folder, rel, Path(rel).stem.replace("_", " "), f"Grad-CAM {i + 1}")
            for i, rel in enumerate(_gradcam(images))
        ],
        other_figures=[
            _fig(folder, rel, key, key) for key, rel in _other_images(images, tasks)
        ],
    )


# --------------------------------------------------------------------------------
# Rendering: templates/report.md.j2 and templates/report.html.j2


@functools.cache
def _environment(kind: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keras_art.evaluation", "templates"),
        autoescape=kind == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        # The stdlib's escape (``&#x27;`` for a quote), as the page always had.
        finalize=_html_text if kind == "html" else None,
    )
    if kind == "md":
        env.filters["md"] = md_escape
        env.filters["md_url"] = _md_url
        env.globals["markdown_table"] = markdown_table
    else:
        env.globals["embed"] = _embed
    return env


def _html_text(value: Any) -> markupsafe.Markup:
    if isinstance(value, markupsafe.Markup):
        return value
    return markupsafe.Markup(html.escape(str(value), quote=True))


def _md_url(path: str) -> str:
    return quote(str(path).replace(os.sep, "/"))


def _image_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError, SyntaxError):
        return None


def _embed(file: Path) -> dict | None:
    """``file`` as a data URI with its drawn size (None when unknown); None when it
    cannot be read (the page says so instead of failing)."""
    try:
        data = Path(file).read_bytes()
    except OSError:
        return None
    mime = _MIME.get(Path(file).suffix.lower(), "application/octet-stream")
    size = _image_size(data)
    return {
        "uri": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}",
        "width": size[0] if size else None,
        "height": size[1] if size else None,
    }


def render_md(report: Report) -> str:
    text = _environment("md").get_template("report.md.j2").render(r=report)
    return text.rstrip() + "\n"


def render_html(report: Report) -> str:
    return _environment("html").get_template("report.html.j2").render(r=report)


def render_page(template: str, **context) -> str:
    """Another page in this report's style: ``templates/<template>`` rendered by the
    report's environment (``*.html.j2``: autoescaped, ``embed`` for images, the
    shared ``_macros.html.j2`` and ``_style.css.j2``; ``*.md.j2``: the ``md`` and
    ``md_url`` filters and ``markdown_table``)."""
    kind = "html" if template.endswith(".html.j2") else "md"
    return _environment(kind).get_template(template).render(**context)


def encode_page(text: str) -> bytes:
    """A rendered page as the bytes to write (lone surrogates escaped)."""
    return _encode(text)


def write_report_md(result: dict, path: str | os.PathLike) -> Path:
    """``report.md``: the report as markdown tables and image links."""
    path = Path(path)
    text = render_md(build_report(result, path.parent))
    return atomic_write_bytes(path, _encode(text))


def write_report_html(result: dict, path: str | os.PathLike) -> Path:
    """``report.html``: one self-contained page (embedded images, inline CSS)."""
    path = Path(path)
    text = render_html(build_report(result, path.parent))
    return atomic_write_bytes(path, _encode(text))
