"""`evaluate`: a finished run's report, the way art-classification papers show one.

    python -m keras_art.evaluate --run runs/artist-cnn_rnn-20261122-101500 --tta --audit
    python -m keras_art.evaluate --run RUN --shards /data/shards/style-576

Reads only the run directory (``model.json``, ``splits.csv``, ``best.keras`` or the
last checkpoint, ``history.csv``, ``summary.json``) and the images (the files of
``splits.csv``; with ``shards``, the same split's records in TFRecord shards, see
`keras_art.evaluation.shards`) and writes ``<run>/eval/<split>/``
(``metrics.json``, ``predictions.npz`` (what `compare` reads),
``classification_report.txt``, ``per_class.csv``, confusion matrices,
``curves.png``, galleries, ``label_audit.csv``, ``gradcam/``, ``report.md``,
``report.html``). The folder is built beside its final place and renamed into it, so a
reader never sees half a report and a second call replaces the first. A split read
from shards goes to ``<run>/eval/<split>-shards-<shard folder name>/``: it never
replaces the report on the files, and shards of two encodings keep one report each.
``metrics.json``'s ``image_source`` says where the images came from.

Warnings a reader must see before trusting the numbers go to the console, to
``metrics.json``'s ``warnings`` and to the top of the report: evaluated images with
a near-duplicate in the run's train split (`train_overlap`; a run split before
near-duplicates were grouped), and model classes the evaluated set has no image of.

Calibration: each task's ECE, classwise ECE, NLL and Brier score before and after
the run's temperature scaling (``model.json``'s ``temperature``, fitted on val at
the end of training) and a reliability diagram (``reliability[_<task>].png``). A run
without temperatures (trained before they existed) gets them fitted here on its val
split, by the same NLL fit, and recorded in ``model.json`` so that export and
predict use them too; with ``checkpoint="last"`` they are fitted for that
checkpoint and not recorded (the record's belong to ``best.keras``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.atomic_files import atomic_write_json
from keras_art.config import DataConfig
from keras_art.data.catalog.input_checks import require_readable
from keras_art.data.catalog.validate import scan_images
from keras_art.data.pipeline.eval_images import image_dataset
from keras_art.data.pipeline.tfrecord import read_manifest
from keras_art.data.sources import load_catalog
from keras_art.data.sources.infer_format import infer_format
from keras_art.errors import ParameterError, UserError
from keras_art.evaluation import metrics as M
from keras_art.evaluation import plots, shards
from keras_art.evaluation.audit import audit_csv, label_audit
from keras_art.evaluation.calibration import calibration_report
from keras_art.evaluation.name_matching import match_classes
from keras_art.evaluation.prediction_file import write_predictions
from keras_art.evaluation.predictions import forward_pass, tta_sizes_for
from keras_art.evaluation.report import write_report_html, write_report_md
from keras_art.evaluation.train_overlap import train_overlap
from keras_art.models.calibration import fit_temperature
from keras_art.models.gradcam import (
    attention_of,
    attention_weights,
    gradcam,
    save_gradcam_figure,
)
from keras_art.models.model_record import ModelRecord
from keras_art.models.run_reader import (
    SplitRows,
    load_run_model,
    open_run,
    read_split,
)
from keras_art.registry import DEFAULT_TOP_K
from keras_art.run_dir import (
    BEST_MODEL_FILE,
    EVAL_METRICS_FILE,
    EVAL_PREDICTIONS_FILE,
    MODEL_RECORD_FILE,
    RunDir,
    safe_name,
)

logger = logging.getLogger(__name__)

GALLERY_SIZE = 16
FILES_SOURCE = {"kind": "files", "description": "image files"}


@dataclass
class EvalRows(SplitRows):
    """The images evaluated and their labels (indices into the model's classes).

    Besides a split's rows: ``class_matching`` for another collection; ``encoded``
    (file -> encoded bytes) holds the images when they were read from TFRecord shards
    rather than from ``files``; ``source`` says where they came from
    (``metrics.json``'s ``image_source``)."""

    class_matching: dict | None = None
    encoded: dict[str, bytes] | None = None
    source: dict | None = None

    def encoded_of(self, files: list[str]) -> list[bytes] | None:
        """The encoded bytes of ``files`` (None: read the files themselves)."""
        return None if self.encoded is None else [self.encoded[f] for f in files]

    def gallery_item(self, file: str, caption: str) -> dict:
        """A `plots.plot_gallery` item, with the image's bytes when in memory."""
        item = {"file": file, "caption": caption}
        if self.encoded is not None:
            item["image"] = self.encoded[file]
        return item


def evaluate(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    checkpoint: str = "best",
    tta: bool = False,
    tta_sizes: list[int] | None = None,
    gradcam: int = 0,
    audit: bool = False,
    data: str | None = None,
    data_format: str | None = None,
    shards: str | os.PathLike | None = None,
    top_k: int = DEFAULT_TOP_K,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate run ``run_dir`` on ``split`` (or another collection) and write the
    report to ``<run_dir>/eval/<split>/``; returns the ``metrics.json`` dict.

    ``tta`` adds horizontal flips at ``tta_sizes`` (default: seed 002's 224/260/296
    scaled to the run's size, or the run's ``augment.multi_size``). ``shards``: read
    ``split``'s images from the TFRecord shards in that folder (written by
    ``make_tfrecords`` from the run's data; checked against the run before the model
    loads) instead of the files; the report then goes to
    ``<run_dir>/eval/<split>-shards-<folder name>/``."""
    start = time.time()
    if data and shards:
        raise ParameterError(
            "{shards} reads the run's own split; {data} evaluates another "
            "collection. Pass one of them."
        )
    run, record = open_run(run_dir, checkpoint)
    rows = _eval_rows(run, record, split, data, data_format, shards)
    overlap, overlap_warning = train_overlap(
        run, rows.files, rows.name, own_split=not data
    )
    model = load_run_model(run, checkpoint)
    sizes = (
        (tta_sizes or tta_sizes_for(record.image_size, _multi_size(run))) if tta else ()
    )
    forward_start = time.time()
    preds = _predict_rows(model, record, rows, checkpoint, sizes, tta)
    forward_s = time.time() - forward_start
    temperature = _temperatures(run, record, model, checkpoint, rows, preds)
    # Built beside eval/<name>/ and renamed into it: a reader never sees half a
    # report, and a second call replaces the first.
    with run.eval_writer(rows.name) as staging:
        result = _write_report(
            staging, run, record, rows, preds, model,
            checkpoint=checkpoint, tta_sizes=sizes, gradcam=gradcam, audit=audit,
            top_k=top_k, bootstrap=bootstrap, seed=seed, start=start,
            forward_s=forward_s,
            overlap=overlap, warnings=[overlap_warning] if overlap_warning else [],
            temperature=temperature,
        )  # fmt: skip
    logger.info(
        "evaluate: report in %s (%.0f s)", run.eval_dir(rows.name), time.time() - start
    )
    return result


# ------------------------------------------------------------------- the run
def _eval_rows(run, record, split, data, data_format, shards) -> EvalRows:
    """The rows to evaluate: another collection (``data``), ``split`` read from
    ``shards``, or ``split`` from the run's own files."""
    if data:
        return collection_rows(record, data, data_format)
    if shards:
        return shard_rows(run, record, split, shards)
    return split_rows(run, record, split)


def _predict_rows(model, record, rows, checkpoint, sizes, tta: bool):
    """The model's predictions for ``rows``, at the run's eval size and resize (TTA:
    flips at ``sizes``)."""
    logger.info(
        "evaluate: %s, %d images, checkpoint %s%s",
        rows.name,
        len(rows.files),
        checkpoint,
        ", TTA" if tta else "",
    )
    return forward_pass(
        model,
        rows.files,
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
        tta_sizes=sizes,
        tta_flip=tta,
        encoded=rows.encoded_of(rows.files),
    )


def split_rows(run: str | os.PathLike, record: ModelRecord, split: str) -> EvalRows:
    """The rows of ``split`` from the run's own splits file (`read_split`)."""
    return EvalRows(**vars(read_split(run, record, split)))


def shard_rows(
    run: str | os.PathLike,
    record: ModelRecord,
    split: str,
    shard_dir: str | os.PathLike,
) -> EvalRows:
    """The rows of ``split`` (labels from ``splits.csv``) with their images read from
    the TFRecord shards in ``shard_dir``; `UserError` unless the shards hold exactly
    that split with the run's classes and labels (`keras_art.evaluation.shards`)."""

    rows = split_rows(run, record, split)
    manifest = read_manifest(shard_dir)
    shards.check_manifest(
        manifest, shard_dir, run, split, record.class_names, rows.files
    )
    records = shards.read_records(shard_dir, split)
    order = shards.align_records(rows.files, [r.path for r in records], shard_dir)
    aligned = [records[i] for i in order]
    shards.check_labels(rows.labels, aligned, rows.files, shard_dir, run)
    source = shards.image_source(shard_dir, manifest.get("images"))
    folder = Path(source["dir"]).name
    logger.info(
        "evaluate: %d %s images from %s", len(rows.files), split, source["description"]
    )
    return replace(
        rows,
        name=f"{split}-shards-{folder}",
        encoded={f: r.image for f, r in zip(rows.files, aligned, strict=True)},
        source=source,
    )


def collection_rows(
    record: ModelRecord, path: str, data_format: str | None
) -> EvalRows:
    """Every labelled image of another collection whose class the model knows."""

    fmt = data_format or infer_format(path)
    task = record.tasks[0] if len(record.tasks) == 1 else None
    catalog = load_catalog(DataConfig(format=fmt, path=path), task=task)
    scan = scan_images(catalog.files)
    require_readable(scan, catalog.files, path)
    for bad, reason in scan.excluded:
        logger.warning("evaluate: skipped %s (%s)", bad, reason)
    keep = np.asarray(scan.ok, bool)
    labels, matching = {}, {}
    for t in record.tasks:
        if t not in catalog.labels:
            continue
        m = match_classes(record.class_names[t], catalog.class_names[t])
        lookup = np.full(len(catalog.class_names[t]) + 1, -1, np.int64)
        for data_index, model_index in m["mapping"].items():
            lookup[int(data_index)] = model_index
        labels[t] = lookup[catalog.labels[t]]  # -1 stays -1 (lookup[-1])
        matching[t] = m
    if not labels:
        raise ParameterError(
            f"{{data}} {path}: it has no {'/'.join(record.tasks)} labels for this run."
        )
    keep &= np.any([labels[t] >= 0 for t in labels], axis=0)
    if not keep.any():
        raise ParameterError(
            f"{{data}} {path}: no image has a class this model knows (matched by name: "
            f"{', '.join(record.class_names[record.tasks[0]][:5])}, ...)."
        )
    idx = np.flatnonzero(keep)
    for t in record.tasks:
        labels[t] = labels[t][idx] if t in labels else np.full(len(idx), -1)
    name = f"{fmt}-{Path(path).expanduser().resolve().name}"
    note = f"another collection ({fmt} at {path}), classes matched by name"
    return EvalRows(name, [catalog.files[i] for i in idx], labels, note, matching)


def _temperatures(run, record, model, checkpoint, rows, preds) -> tuple[dict, str]:
    """``({task: T or None}, where T comes from)``: the record's, or fitted on the
    val split when the run has none (recorded) or for the last checkpoint."""
    if record.temperature and checkpoint == "best":
        source = f"{MODEL_RECORD_FILE}: fitted on the val split by NLL in training"
        return dict(record.temperature), source
    val = _val_predictions(run, record, model, checkpoint, rows, preds)
    if val is None:
        return dict.fromkeys(record.tasks), "not calibrated: the run has no val split"
    temps = {}
    for task in record.tasks:
        labels, probs = val[0].labels[task], val[1].probs[task]
        fitted = fit_temperature(labels, probs) if (labels >= 0).any() else 1.0
        temps[task] = round(fitted, 6)
    if checkpoint == "best":
        record.with_temperature(temps).write(run)
        source = (
            f"fitted on the val split by NLL by this evaluation (the run had none) "
            f"and recorded in {MODEL_RECORD_FILE}"
        )
    else:
        source = (
            f"fitted on the val split by NLL for the last checkpoint (not recorded: "
            f"{MODEL_RECORD_FILE}'s belong to {BEST_MODEL_FILE})"
        )
    logger.info("evaluate: temperatures %s, %s", temps, source)
    return temps, source


def _val_predictions(run, record, model, checkpoint, rows, preds):
    """``(rows, predictions)`` of the val split (those in hand when ``rows`` are
    it); None when the run has no val split."""
    if rows.name == "val":
        return rows, preds
    try:
        val_rows = split_rows(run, record, "val")
    except ParameterError:  # an empty val split
        return None
    return val_rows, _predict_rows(model, record, val_rows, checkpoint, (), False)


def _multi_size(run: RunDir) -> list[int]:
    cfg = run.read_config()
    return list(cfg.get("augment", {}).get("multi_size") or [])


# ------------------------------------------------------------------- writing
def _write_report(staging, run, record, rows, preds, model, **opts) -> dict:
    """Every file of the report in ``staging``; returns the ``metrics.json`` dict."""
    images: dict[str, Any] = {}
    per_task, report_texts, per_class_rows = {}, [], []
    for task in record.tasks:
        if not (rows.labels[task] >= 0).any():
            continue
        m, per_task[task] = _task_metrics(record, rows, preds, task, opts)
        opts["warnings"] += _missing_classes(rows.name, task, m["per_class"])
        report_texts.append(f"== {task} ({rows.name}) ==\n{m['report_text']}")
        per_class_rows += [{"task": task, **r} for r in m["per_class"]]
        images.update(_task_plots(staging, record, rows, preds, task, m))
        images.update(_reliability(staging, record, rows, task, per_task[task]))
    if not per_task:
        raise UserError(f"{rows.name}: no labelled image to evaluate.")
    for warning in opts["warnings"]:
        logger.warning("evaluate: %s", warning)
    if run.history.is_file():
        images["curves"] = plots.plot_training_curves(
            run.history, staging / "curves.png"
        ).name
    if opts["audit"]:
        images.update(_audit(staging, record, rows, preds))
    if opts["gradcam"]:
        images["gradcam"] = _gradcam(
            staging, model, record, rows, preds, opts["gradcam"]
        )
    result = _metrics_record(run, record, rows, preds, per_task, opts)
    atomic_write_json(staging / EVAL_METRICS_FILE, result)
    write_predictions(
        staging / EVAL_PREDICTIONS_FILE,
        rows.files,
        {t: rows.labels[t] for t in per_task},
        {t: preds.probs[t] for t in per_task},
    )
    (staging / "classification_report.txt").write_text("\n\n".join(report_texts) + "\n")
    (staging / "per_class.csv").write_text(M.per_class_csv(per_class_rows))
    page = {**result, "images": images}
    write_report_md(page, staging / "report.md")
    write_report_html(page, staging / "report.html")
    return result


def _task_metrics(record, rows, preds, task, opts) -> tuple[dict, dict]:
    """``task``'s classification metrics, and its ``metrics.json`` entry (with
    bootstrap intervals, most-confused pairs and TTA metrics)."""
    names, labels, probs = (
        record.class_names[task],
        rows.labels[task],
        preds.probs[task],
    )
    m = M.classification_metrics(labels, probs, names, top_k=(1, opts["top_k"]))
    # per_class stays (the report's table); the text and matrix have files.
    entry = {k: v for k, v in m.items() if k not in ("report_text", "confusion")}
    entry["bootstrap"] = M.bootstrap_ci(
        labels, probs, n_resamples=opts["bootstrap"], seed=opts["seed"]
    )
    entry["most_confused"] = M.most_confused_pairs(m["confusion"], names)
    temps, source = opts["temperature"]
    entry["calibration"] = calibration_report(labels, probs, temps[task], source)
    if preds.tta_mean is not None:
        entry["tta"] = _tta_metrics(M, labels, preds, task, names, opts["top_k"])
    return m, entry


def _task_plots(staging, record, rows, preds, task, m) -> dict[str, str]:
    """``task``'s confusion matrix and top-losses gallery; image key -> file name."""
    names, labels, probs = (
        record.class_names[task],
        rows.labels[task],
        preds.probs[task],
    )
    suffix = "" if len(record.tasks) == 1 else f"_{task}"
    images = {}
    images[f"confusion_{task}"] = plots.plot_confusion_matrix(
        m["confusion"], names, staging / f"confusion_matrix{suffix}.png",
        title=f"{task}: {rows.name}",
    ).name  # fmt: skip
    images[f"top_losses_{task}"] = plots.plot_gallery(
        _top_losses(rows, labels, probs, names),
        staging / f"top_losses{suffix}.png",
        title=f"{task}: the {GALLERY_SIZE} images with the highest loss",
    ).name
    return images


def _reliability(staging, record, rows, task, entry) -> dict[str, str]:
    """``task``'s reliability diagram, before and after temperature scaling."""
    suffix = "" if len(record.tasks) == 1 else f"_{task}"
    path = plots.plot_reliability(
        entry["calibration"],
        staging / f"reliability{suffix}.png",
        title=f"{task}: {rows.name}, {entry['n']} images",
    )
    return {f"reliability_{task}": path.name}


def _metrics_record(run, record, rows, preds, per_task, opts) -> dict:
    """The ``metrics.json`` dict: the evaluation's settings and ``per_task`` (plus
    the tasks combined when there are several)."""
    result = {
        "run": str(run),
        "split": rows.name,
        "split_note": rows.note,
        "checkpoint": opts["checkpoint"],
        "tasks": list(per_task),
        "n_images": len(rows.files),
        "image_source": rows.source or FILES_SOURCE,
        "per_task": per_task,
        "seconds": round(time.time() - opts["start"], 1),
        # The forward pass alone (decode, resize, model; TTA views included):
        # compare's images/s.
        "forward_pass": _forward_pass_record(len(rows.files), opts),
    }
    if len(per_task) > 1:
        result["combined"] = M.combined_metrics(
            {t: (rows.labels[t], preds.probs[t]) for t in per_task},
            {t: record.class_names[t] for t in per_task},
            top_k=(1, opts["top_k"]),
        )
    if opts["tta_sizes"]:
        result["tta"] = {"flip": True, "sizes": list(opts["tta_sizes"])}
    if rows.class_matching:
        result["class_matching"] = rows.class_matching
    if opts["overlap"]:
        result["near_duplicates_in_train"] = opts["overlap"]
    if opts["warnings"]:
        result["warnings"] = opts["warnings"]
    import keras_art

    result["keras_art_version"] = keras_art.__version__
    return result


def _forward_pass_record(n_images: int, opts) -> dict:
    views = 1 + 2 * len(opts["tta_sizes"])  # plain, then each size plain + flipped
    seconds = max(float(opts["forward_s"]), 1e-9)
    return {
        "seconds": round(seconds, 3),
        "images": n_images * views,
        "images_per_second": round(n_images * views / seconds, 1),
    }


def _missing_classes(name: str, task: str, per_class: list[dict]) -> list[str]:
    """A warning naming ``task``'s model classes with no image in the evaluated
    set ``name`` (none when every class has one)."""
    missing = [row["class"] for row in per_class if row["support"] == 0]
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return [
        f"{len(missing)} of the model's {len(per_class)} {task} classes have no "
        f"{name} images ({shown}): their recall and F1 are undefined (the report says "
        f"'no {name} images'), and macro F1 counts only the classes present or "
        f"predicted."
    ]


def _tta_metrics(M, labels, preds, task, names, top_k) -> dict:
    keys = ("top1", f"top{top_k}", "macro_f1", "weighted_f1")
    out = {}
    for kind, scores in (
        ("mean", preds.tta_mean[task]),
        ("vote", preds.tta_votes[task]),
    ):
        m = M.classification_metrics(labels, scores, names, top_k=(1, top_k))
        out[kind] = {k: m[k] for k in keys if k in m}
    return out


def _top_losses(rows, labels, probs, names) -> list[dict]:
    labelled = np.flatnonzero(labels >= 0)
    p_true = probs[labelled, labels[labelled]]
    order = labelled[np.argsort(p_true)[:GALLERY_SIZE]]
    items = []
    for i in order:
        pred = int(probs[i].argmax())
        caption = (
            f"true: {names[labels[i]]}\npred: {names[pred]} ({probs[i, pred]:.2f})"
        )
        items.append(rows.gallery_item(rows.files[i], caption))
    return items


def _audit(staging, record, rows, preds) -> dict:
    task = record.tasks[0]  # the embedding is shared; audit the primary task's labels
    names = record.class_names[task]
    flagged = label_audit(
        preds.embeddings, rows.labels[task], preds.probs[task], names, rows.files
    )
    (staging / "label_audit.csv").write_text(audit_csv(flagged))
    items = [
        rows.gallery_item(
            r["file"],
            f"label: {r['label']}\npred: {r['predicted']} "
            f"({float(r['confidence']):.2f})\n{r['reasons']}",
        )
        for r in flagged[:GALLERY_SIZE]
    ]
    path = plots.plot_gallery(
        items, staging / "label_audit.png", title=f"{task}: most suspicious labels"
    )
    logger.info(
        "evaluate: label audit flagged %d of %d images", len(flagged), len(rows.files)
    )
    return {f"audit_{task}": path.name}


def _gradcam(staging, model, record, rows, preds, n: int) -> list[str]:
    """Grad-CAM of ``n`` images: half the most confident right ones, half wrong."""

    task = record.tasks[0]
    names, labels, probs = (
        record.class_names[task],
        rows.labels[task],
        preds.probs[task],
    )
    chosen = _gradcam_choice(labels, probs, n)
    files = [rows.files[i] for i in chosen]
    out_dir = staging / "gradcam"
    out_dir.mkdir()
    written = []
    start = 0
    batches = image_dataset(
        files, record.image_size, record.eval_resize, 8, encoded=rows.encoded_of(files)
    )
    for batch in batches:
        heatmaps, _ = gradcam(model, batch, task)
        attention = attention_weights(model, batch)
        for j in range(len(batch)):
            i = chosen[start + j]
            pred = int(probs[i].argmax())
            truth = names[labels[i]] if labels[i] >= 0 else "?"
            path = (
                out_dir / f"{start + j:02d}_{safe_name(Path(rows.files[i]).stem)}.png"
            )
            save_gradcam_figure(
                np.asarray(batch[j]).astype(np.uint8),
                heatmaps[j],
                path,
                title=f"pred: {names[pred]} ({probs[i, pred]:.2f}) / true: {truth}",
                attention=attention_of(attention, j),
            )
            written.append(f"gradcam/{path.name}")
        start += len(batch)
    return written


def _gradcam_choice(labels, probs, n: int) -> list[int]:
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    right = [i for i in np.argsort(-conf) if labels[i] >= 0 and pred[i] == labels[i]]
    wrong = [i for i in np.argsort(-conf) if labels[i] >= 0 and pred[i] != labels[i]]
    take_wrong = min(len(wrong), n - min(len(right), n // 2))
    return [int(i) for i in wrong[:take_wrong] + right[: n - take_wrong]]
