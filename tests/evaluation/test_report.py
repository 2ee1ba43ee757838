"""report.md / report.html from a realistic metrics.json result: every number and image
is there, the page is self-contained, text is escaped."""

import base64
import configparser
import copy
import html
import importlib.resources
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_art.evaluation.calibration import calibration_report
from keras_art.evaluation.plots import (
    plot_confusion_matrix,
    plot_gallery,
    plot_reliability,
    plot_training_curves,
)
from keras_art.evaluation.report import (
    build_report,
    render_html,
    render_md,
    write_report_html,
    write_report_md,
)
from keras_art.markdown import md_escape
from tests.evaluation.test_plots import (
    STYLES,
    synthetic_confusion,
    write_history,
    write_images,
)

ROOT = Path(__file__).resolve().parents[2]
ODD = "<b>&'\""
GENRES = ["landscape", "portrait", ODD, "Dürer_Ã¼ | still life"]


def metrics_from_confusion(confusion, class_names, seed):
    """What `classification_metrics` + bootstrap + most_confused give, on made-up
    but self-consistent numbers (per-class rows kept for the report)."""
    rng = np.random.default_rng(seed)
    confusion = np.asarray(confusion, dtype=float)
    tp, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(
        2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0
    )
    top1 = float(tp.sum() / support.sum())
    macro = float(f1.mean())
    averaged = {
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "weighted_precision": float((precision * support).sum() / support.sum()),
        "weighted_recall": top1,
    }
    rates = confusion / support[:, None]
    pairs = [
        {
            "true": class_names[i],
            "predicted": class_names[j],
            "count": int(confusion[i, j]),
            "rate": float(rates[i, j]),
        }
        for i in range(len(class_names))
        for j in range(len(class_names))
        if i != j and confusion[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p["rate"], -p["count"]))
    return {
        "n": int(support.sum()),
        "top1": top1,
        "top5": min(1.0, top1 + float(rng.uniform(0.15, 0.25))),
        "macro_f1": macro,
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        **averaged,
        "loss": float(rng.uniform(0.8, 1.6)),
        "per_class": [
            {
                "class": name,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        ],
        "bootstrap": {
            "top1": [top1 - 0.021, top1 + 0.019],
            "macro_f1": [macro - 0.027, macro + 0.024],
            "weighted_f1": [macro - 0.025, macro + 0.026],
            **{key: [v - 0.03, v + 0.028] for key, v in averaged.items()},
            "n_resamples": 1000,
            "seed": 0,
        },
        "most_confused": pairs[:10],
    }


def synthetic_calibration(classes: int, seed: int) -> dict:
    """`calibration_report` of an over-confident model (T = 2 recovers it)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (300, classes))
    truth = np.exp(z / 2) / np.exp(z / 2).sum(1, keepdims=True)
    labels = (truth.cumsum(1) > rng.random((300, 1))).argmax(1)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return calibration_report(labels, probs, 2.0, "model.json: fitted on val")


def build_example(
    folder, *, multi_task=True, tta=False, class_matching=False, calibration=False
):
    """An eval folder as `evaluate` leaves it: PNGs drawn with our plot functions and
    the metrics.json result (plus "images") that the reports render."""
    folder.mkdir(parents=True, exist_ok=True)
    tasks = {"style": STYLES, "genre": GENRES} if multi_task else {"style": STYLES}
    per_task, images = {}, {}
    paintings = write_images(folder, 8)
    for seed, (task, names) in enumerate(tasks.items()):
        confusion = synthetic_confusion(len(names), seed=seed)
        per_task[task] = metrics_from_confusion(confusion, names, seed)
        plot_confusion_matrix(
            confusion, names, folder / f"confusion_matrix_{task}.png", title=task
        )
        images[f"confusion_{task}"] = f"confusion_matrix_{task}.png"
        items = [
            {
                "file": str(paintings[k]),
                "caption": f"true: {names[k % len(names)]}\n"
                f"pred: {names[-1 - k % len(names)]} ({0.97 - 0.04 * k:.2f})",
            }
            for k in range(8)
        ]
        items[5]["file"] = str(folder / "gone.jpg")  # a moved file: grey tile
        plot_gallery(
            items, folder / f"top_losses_{task}.png", title=f"Top losses: {task}"
        )
        images[f"top_losses_{task}"] = f"top_losses_{task}.png"
        if calibration:
            cal = per_task[task]["calibration"] = synthetic_calibration(
                len(names), seed
            )
            plot_reliability(cal, folder / f"reliability_{task}.png", title=task)
            images[f"reliability_{task}"] = f"reliability_{task}.png"
        if tta:
            m = per_task[task]
            per_task[task]["tta"] = {
                "mean": {k: m[k] + 0.012 for k in ("top1", "top5", "macro_f1")}
                | {"weighted_f1": m["weighted_f1"] + 0.011},
                "vote": {k: m[k] + 0.006 for k in ("top1", "top5", "macro_f1")}
                | {"weighted_f1": m["weighted_f1"] + 0.005},
            }
    audit = [
        {"file": str(p), "caption": f"#{k + 1} label: {STYLES[k]}\nmargin -0.0{k}"}
        for k, p in enumerate(paintings[:6])
    ]
    plot_gallery(audit, folder / "audit_style.png", title="Label audit: style")
    images["audit_style"] = "audit_style.png"
    plot_training_curves(write_history(folder / "history.csv"), folder / "curves.png")
    images["curves"] = "curves.png"
    (folder / "gradcam").mkdir(exist_ok=True)
    images["gradcam"] = []
    for k in range(3):
        rel = f"gradcam/gradcam_{k}.png"
        Image.fromarray(np.full((160, 160, 3), 40 * k, dtype="uint8")).save(
            folder / rel
        )
        images["gradcam"].append(rel)
    result = {
        "run": "/runs/style-cnn_rnn-20261124-070427",
        "split": "test",
        "split_note": "official WikiArt split; val was used for model selection",
        "checkpoint": "best",
        "tasks": list(tasks),
        "n_images": per_task["style"]["n"],
        "seconds": 41.27,
        "keras_art_version": "0.1.0",
        "per_task": per_task,
        "images": images,
    }
    if multi_task:
        result["combined"] = {
            "n": sum(m["n"] for m in per_task.values()),
            "top1": 0.6123,
            "top5": 0.8761,
            "macro_f1": 0.5432,
            "weighted_f1": 0.6012,
            "definition": "top-k: micro over all labelled (image, task) pairs; "
            "macro-F1: mean over the union of task classes (style:..., genre:...)",
        }
    if tta:
        result["tta"] = {"flip": True, "sizes": [224, 260, 296]}
    if class_matching:
        result["class_matching"] = {
            "mapping": {"0": 4, "1": 12},
            "matched": [["baroque", "Baroque"], ["impressionism", "Impressionism"]],
            "unmatched_data": ["Byzantine <icons>"],
            "unmatched_model": [
                s for s in STYLES if s not in ("Baroque", "Impressionism")
            ],
        }
    return result


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "test"
    result = build_example(
        folder, multi_task=True, tta=True, class_matching=True, calibration=True
    )
    return folder, result


def image_files(result):
    images = result["images"]
    return [v for k, v in images.items() if k != "gradcam"] + images["gradcam"]


def f3(value):
    return f"{value:.3f}"


# --- html ------------------------------------------------------------------------


def test_html_embeds_every_image_and_fetches_nothing(example):
    folder, result = example
    page = write_report_html(result, folder / "report.html").read_text("utf-8")
    for rel in image_files(result):
        encoded = base64.b64encode((folder / rel).read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in page, rel
    sources = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page)
    assert len(sources) == len(image_files(result))
    assert all(s.startswith("data:") for s in sources)
    for external in ("<link", "<script", "@import", "url(", "http://", "https://"):
        assert external not in page


def test_html_escapes_class_names(example):
    folder, result = example
    page = write_report_html(result, folder / "report.html").read_text("utf-8")
    assert ODD not in page and "<b>&" not in page
    assert "&lt;b&gt;&amp;&#x27;&quot;" in page  # per-class and confused-pairs rows
    assert "Byzantine &lt;icons&gt;" in page
    assert "Dürer_Ã¼ | still life" in page  # mojibake survives as text


def test_html_shows_every_number(example):
    folder, result = example
    page = write_report_html(result, folder / "report.html").read_text("utf-8")
    assert "val was used for model selection" in page
    for task, m in result["per_task"].items():
        for key in ("top1", "top5", "macro_f1", "weighted_f1", "loss"):
            assert f3(m[key]) in page, (task, key)
        lo, hi = m["bootstrap"]["top1"]
        assert f"[{f3(lo)}, {f3(hi)}]" in page
        for row in m["per_class"]:
            assert f3(row["f1"]) in page
        for variant in ("mean", "vote"):
            for key, value in m["tta"][variant].items():
                assert f3(value) in page, (task, variant, key)
    for key in ("top1", "top5", "macro_f1", "weighted_f1"):
        assert f3(result["combined"][key]) in page
    assert "micro over all labelled (image, task) pairs" in page
    assert "224, 260, 296" in page
    assert "2 classes matched" in page


def test_html_places_confused_pairs_beside_the_matrix(example):
    folder, result = example
    page = write_report_html(result, folder / "report.html").read_text("utf-8")
    style = page[
        page.index("<h2>Task: style</h2>") : page.index("<h2>Task: genre</h2>")
    ]
    side = style[style.index('<div class="side">') :]
    assert side.index('<figure class="cm"') < side.index("Most confused pairs")
    first = result["per_task"]["style"]["most_confused"][0]
    assert f'<td class="name">{first["true"]}</td>' in side


def test_html_reports_a_missing_image_instead_of_failing(tmp_path):
    result = build_example(tmp_path, multi_task=False)
    (tmp_path / "curves.png").unlink()
    page = write_report_html(result, tmp_path / "report.html").read_text("utf-8")
    assert "image not found: curves.png" in page


def test_per_class_read_from_csv_when_result_has_none(tmp_path):
    result = build_example(tmp_path, multi_task=False)
    del result["per_task"]["style"]["per_class"]
    (tmp_path / "per_class.csv").write_text(
        "class,precision,recall,f1,support\nBaroque,0.5,0.25,0.3333,120\n"
    )
    page = write_report_html(result, tmp_path / "report.html").read_text("utf-8")
    assert "0.333" in page and "Baroque" in page
    md = write_report_md(result, tmp_path / "report.md").read_text("utf-8")
    assert "| Baroque | 0.500 | 0.250 | 0.333 | 120 |" in md


def test_reports_survive_undecodable_names(tmp_path):
    result = build_example(tmp_path, multi_task=False)
    result["per_task"]["style"]["per_class"][0]["class"] = "Mus\udce9e"  # bad bytes
    assert write_report_html(result, tmp_path / "report.html").stat().st_size > 0
    assert "Mus\\udce9e" in write_report_md(result, tmp_path / "r.md").read_text()


# --- markdown --------------------------------------------------------------------


def test_md_has_headline_rows_and_image_links(example):
    folder, result = example
    md = write_report_md(result, folder / "report.md").read_text("utf-8")
    lines = md.splitlines()
    assert "| task | n | top-1 | top-5 | macro-F1 | weighted-F1 | loss |" in md
    for task, m in result["per_task"].items():
        row = next(line for line in lines if line.startswith(f"| {task} | "))
        for key in ("top1", "top5", "macro_f1", "weighted_f1", "loss"):
            assert f"| {f3(m[key])} |" in row
        assert f3(m["bootstrap"]["macro_f1"][0]) in row
    combined = next(line for line in lines if line.startswith("| Combined | "))
    assert f"| {f3(result['combined']['top1'])} |" in combined
    assert combined.endswith("| — | — |")  # no loss or intervals for Combined
    for rel in image_files(result):
        assert f"]({rel})" in md, rel
    assert "left out: 1 data class, 25 model classes" in md
    assert "| baroque | Baroque |" in md
    tta = [line for line in lines if line.startswith("| style | TTA")]
    assert len(tta) == 2
    assert "val was used for model selection" in md


def test_md_escapes_table_breaking_names(example):
    folder, result = example
    md = write_report_md(result, folder / "report.md").read_text("utf-8")
    assert "Dürer_Ã¼ \\| still life" in md  # a bare | would split the table cell
    assert "\\<b>&'\"" in md  # a bare <b> would turn bold in a markdown viewer
    separators = re.compile(r"(?<!\\)\|")
    expected, checked = None, 0
    for line in md.splitlines():  # every row has as many cells as its header
        if not line.startswith("|"):
            expected = None
            continue
        count = len(separators.findall(line))
        if expected is None:
            expected = count
        assert count == expected, line
        checked += "Dürer" in line
    assert checked >= 2  # per-class and confused-pairs rows


def test_single_task_without_extras_has_no_empty_sections(tmp_path):
    result = build_example(tmp_path, multi_task=False)
    page = write_report_html(result, tmp_path / "report.html").read_text("utf-8")
    md = write_report_md(result, tmp_path / "report.md").read_text("utf-8")
    for text in (page, md):
        assert "Combined" not in text
        assert "Test-time augmentation" not in text
        assert "Class matching" not in text
        assert "Calibration" not in text and "Reliability" not in text


def test_warnings_and_classes_without_images_show_in_both_pages(tmp_path):
    result = build_example(tmp_path, multi_task=False)
    warning = "1 test images have a near-duplicate in train (max distance 4): a ~ b."
    result["warnings"] = [warning]
    rows = result["per_task"]["style"]["per_class"]
    rows[2] = {**rows[2], "recall": 0.0, "f1": 0.0, "support": 0}
    report = build_report(result, tmp_path)
    cells = report.tasks[0].per_class.rows
    assert cells[2][2:4] == ["no test images", "no test images"]
    assert cells[1][2] != "no test images" and report.tasks[0].per_class.bars[2] is None
    md = write_report_md(result, tmp_path / "report.md").read_text("utf-8")
    page = write_report_html(result, tmp_path / "report.html").read_text("utf-8")
    assert f"- **warning**: {warning}" in md
    assert f"<b>Warning</b>: {html.escape(warning)}" in page
    assert page.count("no test images") == 2


# --- one model, two templates ------------------------------------------------------


def model_texts(report):
    """Every table cell, note and caption of the model: what both pages must show."""
    texts = [report.title, report.split, report.split_note, report.bootstrap_note]
    texts += [report.combined_definition, report.tta_note, report.calibration_note]
    texts += [value for _, value in report.facts]
    texts += report.warnings
    tables = [report.headline, report.intervals, report.tta, report.calibration]
    if report.matching:
        tables.append(report.matching.table)
        texts.append(report.matching.summary)
        texts += [name for _, names in report.matching.left_out for name in names]
    for task in report.tasks:
        texts.append(task.name)
        tables += [task.per_class, task.most_confused]
    for table in filter(None, tables):
        texts += table.header + [cell for row in table.rows for cell in row]
    return [t for t in texts if t]


def test_md_and_html_render_one_model(example):
    folder, result = example
    report = build_report(result, folder)
    md = write_report_md(result, folder / "report.md").read_text("utf-8")
    page = write_report_html(result, folder / "report.html").read_text("utf-8")
    assert md == render_md(report) and page == render_html(report)
    texts = model_texts(report)
    numbers = [t for t in texts if re.fullmatch(r"[\d.,\[\] —-]+", t)]
    assert len(numbers) > 200  # headline, TTA, per-class and confused-pairs cells
    for text in texts:
        assert md_escape(text) in md, text
        assert html.escape(text) in page, text
    figures = [
        f for t in report.tasks for f in (t.confusion, t.reliability, *t.galleries)
    ]
    figures += [report.curves, *report.gradcam]
    assert len(figures) == len(image_files(result))
    for figure in figures:
        assert f"]({figure.path})" in md
        encoded = base64.b64encode(figure.file.read_bytes()).decode("ascii")
        assert encoded in page


def test_a_row_added_to_the_model_shows_in_both_pages(example):
    folder, result = example
    report = build_report(result, folder)
    report.headline.rows.insert(0, ["sentinel", *["0.123456"] * 8])
    report.tasks[0].galleries.clear()
    md, page = render_md(report), render_html(report)
    assert "| sentinel | 0.123456 |" in md
    assert '<td class="name">sentinel</td><td>0.123456</td>' in page
    assert "Top losses" not in md.split("## Task: genre")[0]
    assert "Top losses" not in page.split("Task: genre")[0]


def test_templates_ship_as_package_data():
    templates = importlib.resources.files("keras_art.evaluation") / "templates"
    names = {"report.md.j2", "report.html.j2"}
    assert names <= {t.name for t in templates.iterdir()}
    # setup.cfg names them, so a wheel (not only this checkout) has them.
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = cfg["options.package_data"]["keras_art"].split()
    shipped = {
        p.name for pattern in patterns for p in (ROOT / "keras_art").glob(pattern)
    }
    assert names <= shipped
    assert "jinja2" in cfg["options"]["install_requires"]


def test_every_score_has_its_interval_in_both_pages(example):
    folder, result = example
    report = build_report(result, folder)
    md, page = render_md(report), render_html(report)
    for text in (md, page):
        assert "Bootstrap intervals" in text
    m = result["per_task"]["genre"]
    boot = m["bootstrap"]
    row = (
        f"| genre | weighted precision | {f3(m['weighted_precision'])} | "
        f"[{f3(boot['weighted_precision'][0])}, {f3(boot['weighted_precision'][1])}] |"
    )
    assert row in md
    assert len(report.intervals.rows) == 7 * len(result["per_task"])
    # An older metrics.json (intervals for top-1 and macro-F1 only): no section.
    result = copy.deepcopy(result)
    for task in result["per_task"].values():
        task["bootstrap"] = {k: task["bootstrap"][k] for k in ("top1", "macro_f1")}
    old = build_report(result, folder)
    assert old.intervals is None and "Bootstrap intervals" not in render_md(old)


def test_calibration_before_and_after_per_task(example):
    folder, result = example
    report = build_report(result, folder)
    assert report.calibration.header == [
        "task", "probabilities", "T", "ECE", "classwise ECE", "NLL", "Brier"
    ]  # fmt: skip
    rows = {(r[0], r[1]): r[2:] for r in report.calibration.rows}
    for task in ("style", "genre"):
        cal = result["per_task"][task]["calibration"]
        for label, key, t in (
            ("before (T = 1)", "before", 1.0),
            ("after", "after", 2.0),
        ):
            m = cal[key]
            want = [
                f3(t),
                *(f3(m[k]) for k in ("ece", "classwise_ece", "nll", "brier")),
            ]
            assert rows[task, label] == want
        assert cal["after"]["ece"] < cal["before"]["ece"]
    assert "model.json: fitted on val" in report.calibration_note
    assert "in-sample" not in report.calibration_note  # the test split
    md = render_md(report)
    assert md.index("## Calibration") < md.index("## Task: style")
    section = md.split("## Task: style")[1].split("## Task: genre")[0]
    assert "### Reliability diagram" in section and "(reliability_style.png)" in section
