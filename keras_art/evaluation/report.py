"""The evaluation report: ``report.md`` for a terminal, ``report.html`` for a browser.

Both render the ``result`` dict that `keras_art.evaluation.evaluate` writes to
``metrics.json`` (plus its ``"images"``: PNG paths relative to the report's folder)
in the same order: run and split, headline table (each task and the multi-task
"Combined" row, bootstrap intervals), test-time augmentation side by side with the
plain numbers, class matching for another collection, then per task the per-class
table, the confusion matrix beside its most-confused pairs, the galleries; then the
training curves and Grad-CAM figures. ``report.html`` is one self-contained file:
the images are embedded as base64 data URIs, the CSS is inline, nothing is fetched.

Per-class rows come from ``result["per_task"][task]["per_class"]`` when present,
else from ``per_class_<task>.csv`` or (single task) ``per_class.csv`` beside the
report.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keras_art.io_utils import atomic_write_bytes

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
# Shared: what the report shows, independent of the markup


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


def _per_class_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["class", "precision", "recall", "F1", "support"]
    body = []
    for row in rows:
        support = _number(row.get("support"))
        body.append(
            [
                str(row.get("class", "")),
                *(_fmt(_number(row.get(k))) for k in ("precision", "recall", "f1")),
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
# Markdown


def _md(value: Any) -> str:
    text = " ".join(str(value).split())
    return re.sub(r"([\\`*|<])", r"\\\1", text)


def _md_table(
    header: list[str], body: list[list[str]], *, name_columns: int = 1
) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
    align = ["---" if c < name_columns else "---:" for c in range(len(header))]
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    return lines


def _md_image(alt: str, rel: str) -> str:
    return f"![{_md(alt)}]({quote(str(rel).replace(os.sep, '/'))})"


def write_report_md(result: dict, path: str | os.PathLike) -> Path:
    """``report.md``: the report as markdown tables and image links."""
    path = Path(path)
    images = _images(result)
    tasks = _tasks(result)
    out = [f"# {_md(_title(result))}", ""]
    out += [f"- **{k}**: {_md(v)}" for k, v in _run_facts(result)]
    if result.get("split_note"):
        out.append(f"- **note**: {_md(result['split_note'])}")
    out += ["", f"## Headline ({_md(result.get('split', '?'))} split)", ""]
    out += [*_md_table(*_headline(result)), ""]
    if note := _bootstrap_note(result):
        out += [_md(note), ""]
    if result.get("combined", {}).get("definition"):
        out += [f"Combined: {_md(result['combined']['definition'])}", ""]
    if tta := _tta_table(result):
        out += ["## Test-time augmentation", "", _md(_tta_note(result)), ""]
        out += [*_md_table(*tta, name_columns=2), ""]
    if matching := _matching(result):
        out += ["## Class matching", ""]
        out.append(_matching_summary(matching))
        pairs = matching["matched"]
        out += ["", *_md_table(["data class", "model class"], pairs, name_columns=2)]
        out.append("")
        for key, label in (
            ("unmatched_data", "Data classes left out"),
            ("unmatched_model", "Model classes with no data"),
        ):
            names = ", ".join(_md(s) for s in matching[key]) or "none"
            out += [f"{label}: {names}", ""]
    folder = path.parent
    for task in tasks:
        metrics = result.get("per_task", {}).get(task, {})
        out += [f"## Task: {_md(task)}", ""]
        if rows := _per_class_rows(result, task, folder):
            out += ["### Per class", "", *_md_table(*_per_class_table(rows)), ""]
        if rel := images.get(f"confusion_{task}"):
            out += ["### Confusion matrix", "", _md_image(f"confusion {task}", rel), ""]
        if pairs := metrics.get("most_confused"):
            out += [
                "### Most confused pairs",
                "",
                *_md_table(*_confused_table(pairs), name_columns=2),
            ]
            out.append("")
        for title, rel in _task_images(images, task):
            out += [f"### {_md(title)}", "", _md_image(title, rel), ""]
        if text := metrics.get("report_text"):
            out += [
                "### scikit-learn classification report",
                "",
                "```",
                text,
                "```",
                "",
            ]
    if rel := images.get("curves"):
        out += ["## Training curves", "", _md_image("training curves", rel), ""]
    if gradcam := _gradcam(images):
        out += ["## Grad-CAM", ""]
        out += [_md_image(f"Grad-CAM {i + 1}", rel) for i, rel in enumerate(gradcam)]
        out.append("")
    if others := _other_images(images, tasks):
        out += ["## Other figures", ""]
        out += [_md_image(key, rel) for key, rel in others] + [""]
    return atomic_write_bytes(path, _encode("\n".join(out).rstrip() + "\n"))


# --------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; margin: 0; color: #1d2125; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1800px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.35em; margin: 1.6em 0 0.5em; padding-bottom: 0.2em;
  border-bottom: 2px solid #d5dae0; }
h3 { font-size: 1.1em; margin: 1.2em 0 0.4em; }
section.task { background: #fff; border: 1px solid #dde1e6; border-radius: 8px;
  padding: 4px 16px 16px; margin-top: 24px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
  margin: 0 0 12px; }
dl.facts dt { font-weight: 600; color: #4a5560; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px;
  margin: 8px 0; }
.muted { color: #5c6670; font-size: 0.92em; }
table { border-collapse: collapse; background: #fff; font-size: 0.95em;
  margin: 6px 0 10px; }
th, td { border: 1px solid #d5dae0; padding: 4px 10px; text-align: right;
  white-space: nowrap; }
th { background: #eef1f4; position: sticky; top: 0; }
td:first-child, th:first-child, .name { text-align: left; }
tr.combined td { font-weight: 600; background: #f3f7fb; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.scroll { overflow-x: auto; }
.side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
/* The matrix shrinks to at most ~75 % of its drawn size to keep the pairs table
   beside it; below that the table wraps under it and the matrix gets the width. */
.side .pairs { flex: 1 0 380px; max-width: 640px; }
figure { margin: 8px 0; }
figure img { display: block; max-width: 100%; height: auto;
  border: 1px solid #e2e5e9; background: #fff; }
figcaption { color: #5c6670; font-size: 0.9em; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
.grid figure { flex: 0 1 360px; }
.bar { display: inline-block; height: 0.7em; background: #4b8bd6;
  vertical-align: middle; margin-right: 6px; border-radius: 2px; }
details { margin: 8px 0; }
pre { background: #f3f4f6; padding: 10px; overflow-x: auto; font-size: 0.9em; }
.missing { color: #a33; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_table(
    header: list[str],
    body: list[list[str]],
    *,
    name_columns: int = 1,
    row_class: dict[int, str] | None = None,
    extra: dict[tuple[int, int], str] | None = None,
) -> str:
    row_class, extra = row_class or {}, extra or {}
    name_attr = ' class="name"'
    head = "".join(
        f"<th{name_attr if c < name_columns else ''}>{_e(h)}</th>"
        for c, h in enumerate(header)
    )
    rows = []
    for r, row in enumerate(body):
        cells = []
        for c, cell in enumerate(row):
            cls = ' class="name"' if c < name_columns else ""
            cells.append(f"<td{cls}>{extra.get((r, c), '')}{_e(cell)}</td>")
        cls = f' class="{row_class[r]}"' if r in row_class else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _image_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError, SyntaxError):
        return None


def _figure(
    folder: Path, rel: str, caption: str, *, cls: str = "", min_scale: float = 1.0
) -> str:
    """An embedded image shown at its drawn size, never wider than the page; with
    ``min_scale`` < 1 (in a flex row) it may shrink to that share of its width."""
    file = Path(rel) if Path(rel).is_absolute() else folder / rel
    attr = f' class="{cls}"' if cls else ""
    try:
        data = file.read_bytes()
    except OSError:
        return (
            f'<figure{attr}><p class="missing">image not found: {_e(rel)}</p>'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    mime = _MIME.get(file.suffix.lower(), "application/octet-stream")
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    size, dims = _image_size(data), ""
    if size:
        width, height = size
        dims = f' width="{width}" height="{height}"'
        if min_scale < 1.0:
            least = int(width * min_scale)
            # Basis = the smallest size allowed, so the row wraps only when even
            # that does not fit; then it grows back towards its drawn width.
            attr += f' style="flex: 1 1 {least}px; max-width: {width}px; min-width: 0"'
    return (
        f'<figure{attr}><img src="{uri}"{dims} alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _f1_bars(rows: list[dict]) -> dict[tuple[int, int], str]:
    bars = {}
    for r, row in enumerate(rows):
        f1 = _number(row.get("f1"))
        if f1 is not None:
            width = max(0.0, min(1.0, f1)) * 4
            bars[(r, 3)] = f'<span class="bar" style="width:{width:.2f}em"></span>'
    return bars


def write_report_html(result: dict, path: str | os.PathLike) -> Path:
    """``report.html``: one self-contained page (embedded images, inline CSS)."""
    path = Path(path)
    folder = path.parent
    images = _images(result)
    tasks = _tasks(result)
    title = _title(result)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        '<dl class="facts">',
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _run_facts(result)),
        "</dl>",
    ]
    if result.get("split_note"):
        out.append(f'<p class="note">{_e(result["split_note"])}</p>')
    header, body = _headline(result)
    combined_row = {len(body) - 1: "combined"} if result.get("combined") else {}
    split = _e(result.get("split", "?"))
    out += [f"<h2>Headline ({split} split)</h2>"]
    out.append(_html_table(header, body, row_class=combined_row))
    if note := _bootstrap_note(result):
        out.append(f'<p class="muted">{_e(note)}</p>')
    if result.get("combined", {}).get("definition"):
        out.append(
            f'<p class="muted"><b>Combined</b>: '
            f"{_e(result['combined']['definition'])}</p>"
        )
    if tta := _tta_table(result):
        out += ["<h2>Test-time augmentation</h2>", f"<p>{_e(_tta_note(result))}</p>"]
        out.append(_html_table(*tta, name_columns=2))
    if matching := _matching(result):
        out.append("<h2>Class matching</h2>")
        out.append(f"<p>{_e(_matching_summary(matching))}</p>")
        out.append(
            _html_table(
                ["data class", "model class"], matching["matched"], name_columns=2
            )
        )
        for key, label in (
            ("unmatched_data", "Data classes left out"),
            ("unmatched_model", "Model classes with no data"),
        ):
            names = ", ".join(_e(s) for s in matching[key]) or "none"
            out.append(f"<p><b>{_e(label)}</b>: {names}</p>")
    for task in tasks:
        metrics = result.get("per_task", {}).get(task, {})
        out += ['<section class="task">', f"<h2>Task: {_e(task)}</h2>"]
        if rows := _per_class_rows(result, task, folder):
            out.append("<h3>Per class</h3>")
            out.append(_html_table(*_per_class_table(rows), extra=_f1_bars(rows)))
        confusion = images.get(f"confusion_{task}")
        pairs = metrics.get("most_confused")
        if confusion or pairs:
            out += ["<h3>Confusion matrix</h3>", '<div class="side">']
            if confusion:
                caption = f"confusion matrix: {task}"
                out.append(
                    _figure(folder, confusion, caption, cls="cm", min_scale=0.75)
                )
            if pairs:
                out += ['<div class="pairs"><h3>Most confused pairs</h3>']
                out += [_html_table(*_confused_table(pairs), name_columns=2), "</div>"]
            out.append("</div>")
        for caption, rel in _task_images(images, task):
            out += [
                f"<h3>{_e(caption)}</h3>",
                _figure(folder, rel, f"{caption}: {task}"),
            ]
        if text := metrics.get("report_text"):
            out.append(
                "<details><summary>scikit-learn classification report</summary>"
                f"<pre>{_e(text)}</pre></details>"
            )
        out.append("</section>")
    if rel := images.get("curves"):
        out += ["<h2>Training curves</h2>", _figure(folder, rel, "training curves")]
    if gradcam := _gradcam(images):
        out += ["<h2>Grad-CAM</h2>", '<div class="grid">']
        out += [
            _figure(folder, rel, Path(rel).stem.replace("_", " ")) for rel in gradcam
        ]
        out.append("</div>")
    if others := _other_images(images, tasks):
        out.append("<h2>Other figures</h2>")
        out += [_figure(folder, rel, key) for key, rel in others]
    out += ["</main></body></html>", ""]
    return atomic_write_bytes(path, _encode("\n".join(out)))
