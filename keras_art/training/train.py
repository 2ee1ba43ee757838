"""`train`: one run from a `Config` to a complete run directory.

Order of work (each step's artifact is written atomically as soon as it exists):
config.json -> classes.json, splits.csv, data_report.json (-> warm_start.json with
train.init_from), model.json -> checkpoints/, history.csv, best.keras, logs/ while
training -> the temperatures fitted on val (`keras_art.training.calibrate`) into
model.json -> summary.json LAST. A run directory without summary.json is incomplete,
and ``--resume`` continues it.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from keras_art.config import Config
from keras_art.data.catalog.prepare import prepare_data, write_data_files
from keras_art.data.catalog.run_data_check import check_same_data
from keras_art.data.pipeline.batch_augment import make_batch_augment
from keras_art.data.pipeline.class_balance import sampler_report
from keras_art.data.pipeline.dataset import make_split_datasets
from keras_art.data.pipeline.tfrecord import check_shards_match
from keras_art.errors import ParameterError, UserError
from keras_art.models.backbones import backbone_stages, resolve_weights
from keras_art.models.classifier import build_classifier
from keras_art.models.model_record import ModelRecord, read_model_record
from keras_art.models.warm_start import load_matching_weights, warm_start_file
from keras_art.run_dir import DATA_REPORT_FILE, RunDir
from keras_art.runtime_info import peak_rss_mb, versions
from keras_art.stage_plan import resolve_stages, run_epochs
from keras_art.training.calibrate import fit_val_temperatures
from keras_art.training.callbacks import BestModelCheckpoint, default_callbacks
from keras_art.training.checkpoints import EpochCheckpointer
from keras_art.training.feature_cache import build_feature_cache
from keras_art.training.precision import POLICIES, resolve_mixed_precision
from keras_art.training.strategies import is_chief_process, make_strategy
from keras_art.training.trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    chief: bool = True  # False on the other workers of a multi-worker run


def make_run_dir(cfg: Config) -> Path:
    """Create ``<workdir>/<run_name>`` for a new run; refuse to reuse a finished one."""
    name = cfg.run_name or (
        f"{cfg.task}-{cfg.model.head}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    run = RunDir(Path(cfg.workdir) / name)
    if run.is_finished():
        raise ParameterError(
            f"{run} already holds a finished run. Pick another {{run_name}} or "
            "{workdir}."
        )
    if run.config.exists():
        raise ParameterError(
            f"{run} holds an unfinished run. Continue it with {{resume}} {run}, "
            "or pick another {run_name}."
        )
    run.path.mkdir(parents=True, exist_ok=True)
    cfg.run_name = name
    return run.path


def set_global_policies(cfg: Config) -> None:
    """Process-wide settings a run needs: seeds, op determinism, the dtype policy.

    Called by entry points (``python -m keras_art.train``), never at import time or
    inside `train`, so a notebook or test decides for its own process. Resolves
    ``train.mixed_precision`` "auto" in ``cfg`` (float16 with a GPU, else off), so
    the trainer and ``config.json`` see what runs.
    """

    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.input.deterministic:
        tf.config.experimental.enable_op_determinism()
    cfg.train.mixed_precision = resolve_mixed_precision(cfg.train.mixed_precision)
    keras.config.set_dtype_policy(POLICIES[cfg.train.mixed_precision])


def _check_weights_early(cfg: Config) -> None:
    """Fail on unavailable weights before scanning a dataset, not after."""

    # Only the embedded demo may fall back to random init when ImageNet weights
    # are unavailable offline; real data stops with a message naming the file.
    resolve_weights(cfg.model.backbone, cfg.model.weights, on_missing=_on_missing(cfg))


# The config key `train` names in its errors about train.init_from (a flag's slot).
INIT_FROM = "train.init_from"


def _on_missing(cfg: Config) -> str:
    return "random" if cfg.data.format == "sample" else "error"


def train(cfg: Config, *, resume: bool = False) -> RunResult:
    """Prepare data, build the model, run staged fine-tuning, write the run dir."""
    start = time.time()
    _check_weights_early(cfg)
    if cfg.train.init_from and not resume:  # a resume reads its checkpoint
        warm_start_file(cfg.train.init_from, INIT_FROM)
    # First TensorFlow work of the run: MultiWorkerMirroredStrategy must exist
    # before any other op runs in the process ("Collective ops must be configured
    # at program startup"), and data preparation runs ops.
    strategy = make_strategy(cfg.train.strategy)
    chief = is_chief_process(cfg.train.strategy)
    run_dir = _open_run_dir(cfg, chief=chief, resume=resume)
    logger.info("run directory: %s", run_dir)
    try:
        prepared = _prepare(cfg, run_dir, chief=chief, resume=resume)
        fit_result = _fit(cfg, prepared, run_dir, strategy, resume=resume, chief=chief)
    except UserError:
        # A run stopped by bad input before its first checkpoint leaves nothing
        # behind (not even a folder that --resume would pick up).
        if chief and not resume and not RunDir(run_dir).checkpoints.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    summary = _summary(cfg, prepared, fit_result, wall_s=time.time() - start)
    if chief:
        RunDir(run_dir).write_summary(summary)
    _log_result_table(summary)
    return RunResult(run_dir=run_dir, summary=summary, chief=chief)


def _prepare(cfg: Config, run_dir: Path, *, chief: bool, resume: bool):
    """The run's rows, checked against the run (resume) or written into it."""
    # Imported here: building a Config and parsing flags must stay cheap.

    prepared = prepare_data(cfg)
    if cfg.input.tfrecords:  # before the model is built: fail fast
        check_shards_match(prepared, cfg.input.tfrecords)
    elif cfg.input.balanced_sampling:
        # TFRecords balance by repeat factors over the record stream.
        prepared.report["sampler"] = sampler_report(prepared, seed=cfg.train.seed)
    if resume:
        check_same_data(prepared, run_dir)
    elif chief:
        write_data_files(prepared, run_dir)
        ModelRecord.from_config(cfg, prepared.class_names).write(run_dir)
    _log_data_summary(prepared)
    return prepared


def _summary(cfg: Config, prepared, fit_result: dict, *, wall_s: float) -> dict:
    return {
        "status": "complete",
        "task": cfg.task,
        "tasks": list(prepared.tasks),
        "preset": cfg.preset,
        "head": cfg.model.head,
        "backbone": cfg.model.backbone,
        "weights_source": fit_result["weights_source"],
        "epochs_run": fit_result["epochs_run"],
        "best_epoch": fit_result["best_epoch"],
        "metrics": fit_result["metrics"],
        "calibration": fit_result["calibration"],
        "metrics_split_note": prepared.report.get(
            "split_note", "val is used for model selection; test is held out"
        ),
        "timings": {"wall_s": round(wall_s, 1), "fit_s": fit_result["fit_s"]},
        "peak_rss_mb": peak_rss_mb(),
        "versions": versions(),
    }


def _open_run_dir(cfg: Config, *, chief: bool, resume: bool) -> Path:
    """The run directory; a new one (with config.json) for the chief of a new run.

    Multi-worker: every worker runs `train` on the same ``--run-name``; only the
    chief writes, the others read the chief's checkpoints on resume (the run
    directory must be on a path every worker sees, as TensorFlow's own
    multi-worker checkpointing assumes).
    """
    if cfg.train.strategy == "multi_worker" and not cfg.run_name:
        raise ParameterError(
            "{train.strategy} multi_worker needs {run_name} NAME: every worker must "
            "name the same run directory."
        )
    if resume or not chief:
        return Path(cfg.workdir).expanduser() / cfg.run_name
    run_dir = make_run_dir(cfg)
    RunDir(run_dir).write_config(cfg.to_json())
    return run_dir


def _fit(
    cfg: Config, prepared, run_dir: Path, strategy, *, resume: bool, chief: bool
) -> dict[str, Any]:
    """Build, train, and evaluate the best weights on val and test."""

    model, weights_source = _build_model(cfg, prepared, strategy, run_dir, chief)
    datasets = make_split_datasets(cfg, prepared)
    stages = resolve_stages(cfg.train)
    for stage in stages:  # a stage's bad augmentation fails now, not hours in
        datasets["train_for_epoch"].with_augment(stage.augment)
    logger.info(
        "schedule: %s, %d epochs at most",
        ", ".join(f"{s.name} ({s.epochs} ep., {s.trainable})" for s in stages),
        run_epochs(cfg.train),
    )
    trainer = Trainer(
        model,
        prepared.tasks,
        cfg.train,
        strategy,
        stages=backbone_stages(model.get_layer("backbone"), cfg.model.backbone),
        batch_augment=make_batch_augment(cfg.augment, cfg.input),
    )
    callbacks = default_callbacks(
        cfg.train, run_dir, backbone=cfg.model.backbone, tensorboard=chief
    )
    fit_start = time.time()
    history = trainer.fit(
        datasets["train_for_epoch"],
        datasets["val"],
        epochs=run_epochs(cfg.train),
        callbacks=callbacks,
        feature_train_ds=_feature_dataset(cfg, model, datasets),
        checkpoints=EpochCheckpointer(RunDir(run_dir).checkpoints),
        resume=resume,
    )
    fit_s = time.time() - fit_start
    best_epoch = _restore_best(callbacks)
    calibration = {}
    if chief and best_epoch is not None:  # T belongs to best.keras's weights
        calibration = fit_val_temperatures(model, datasets["val"], prepared.tasks)
        _record_temperatures(run_dir, calibration)
    return {
        "weights_source": weights_source,
        "epochs_run": len(history.epoch),
        "best_epoch": None if best_epoch is None else best_epoch + 1,
        "metrics": _final_metrics(trainer, datasets, prepared.tasks),
        "calibration": calibration,
        "fit_s": round(fit_s, 1),
    }


def _record_temperatures(run_dir: Path, calibration: dict) -> None:
    """The fitted temperatures into the run's model record (``model.json``)."""
    if calibration:
        temps = {t: c["temperature"] for t, c in calibration.items()}
        read_model_record(run_dir).with_temperature(temps).write(run_dir)


def _build_model(cfg: Config, prepared, strategy, run_dir: Path, chief: bool):
    with strategy.scope():
        model, weights_source = build_classifier(
            cfg.model, prepared.num_classes, on_missing_weights=_on_missing(cfg)
        )
    warm = _warm_start(cfg, model, run_dir, chief)
    if warm is not None:
        weights_source += f"; {warm['summary']}"
    if cfg.train.train_bn is None:
        # Backbone weights from another run are trained weights, not random ones.
        pretrained = warm is not None and any(
            n.startswith("backbone/") for n in warm["loaded"]
        )
        cfg.train.train_bn = weights_source.startswith("random") and not pretrained
        if chief:
            RunDir(run_dir).write_config(cfg.to_json())
    logger.info(
        "model: %s + %s head, weights: %s, %s parameters%s",
        cfg.model.backbone,
        cfg.model.head,
        weights_source,
        f"{model.count_params():,}",
        ", BatchNorm learns after the unfreeze" if cfg.train.train_bn else "",
    )
    return model, weights_source


def _warm_start(cfg: Config, model, run_dir: Path, chief: bool) -> dict | None:
    """``train.init_from`` loaded into ``model`` (a new run) and recorded, or the
    record of it (a resumed run, whose checkpoint holds the weights); None without."""
    run = RunDir(run_dir)
    if not cfg.train.init_from:
        return None
    if run.warm_start.is_file() and run.checkpoints.exists():
        return run.read_warm_start()
    report = load_matching_weights(model, cfg.train.init_from, INIT_FROM)
    for line in report.lines():
        logger.info("%s", line)
    record = {"summary": report.summary(), **report.as_dict()}
    if chief:
        run.write_warm_start(record)
    return record


def _feature_dataset(cfg: Config, model, datasets):
    """The frozen backbone's features of the train split, when train.feature_cache."""
    head_stages = [s for s in resolve_stages(cfg.train) if s.trains == "head"]
    if not cfg.train.feature_cache or not any(s.epochs > 0 for s in head_stages):
        return None

    logger.info("feature cache: the frozen backbone runs once over the train split")
    return build_feature_cache(
        model.get_layer("backbone"),
        datasets["train_eval"],
        batch_size=cfg.input.batch_size,
        flips=cfg.augment.hflip,
        seed=cfg.train.seed,
    )


def _restore_best(callbacks) -> int | None:
    """Best epoch (0-based) after putting its weights back; every worker alike."""

    best = next(cb for cb in callbacks if isinstance(cb, BestModelCheckpoint))
    return best.best_epoch if best.restore_best_weights() else None


def _final_metrics(trainer, datasets, tasks) -> dict:
    """Val and test numbers of the restored (best) weights."""
    metrics = {}
    for split in ("val", "test"):
        if datasets.get(split) is not None:
            logs = trainer.evaluate(datasets[split], prefix="")
            metrics[split] = _per_task(logs, tasks)
    return metrics


def _per_task(logs: dict[str, float], tasks) -> dict[str, dict[str, float]]:
    names = ("loss", "top1", "top5", "macro_f1", "weighted_f1")
    if len(tasks) == 1:
        return {tasks[0]: {k: round(float(logs[k]), 4) for k in names}}
    return {t: {k: round(float(logs[f"{t}_{k}"]), 4) for k in names} for t in tasks}


def _log_data_summary(prepared) -> None:
    for task in prepared.tasks:
        names = prepared.class_names[task]
        sizes = {s: len(prepared.indices(s)) for s in ("train", "val", "test")}
        logger.info(
            "data: task=%s classes=%d %s",
            task,
            len(names),
            " ".join(f"{k}={v}" for k, v in sizes.items()),
        )
    sampler = prepared.report.get("sampler")
    if sampler:
        fractions = sampler["sampled_fraction"].values()
        logger.info(
            "data: balanced sampling on %s: each class drawn %.1f%%-%.1f%% of an epoch",
            sampler["task"],
            100 * min(fractions),
            100 * max(fractions),
        )
    excluded = prepared.report.get("excluded", [])
    if excluded:
        logger.info(
            "data: %d unreadable file(s) excluded, see %s",
            len(excluded),
            DATA_REPORT_FILE,
        )


def _log_result_table(summary: dict[str, Any]) -> None:
    header = f"{'split':<8}{'task':<8}{'top1':>8}{'top5':>8}{'macroF1':>9}{'wF1':>8}"
    lines = ["", header]
    for split, per_task in summary["metrics"].items():
        for task, m in per_task.items():
            lines.append(
                f"{split:<8}{task:<8}{m['top1']:>8.3f}{m['top5']:>8.3f}"
                f"{m['macro_f1']:>9.3f}{m['weighted_f1']:>8.3f}"
            )
    lines.append(
        f"weights: {summary['weights_source']}; "
        f"wall time {summary['timings']['wall_s']:.0f} s; "
        f"peak RSS {summary['peak_rss_mb']:.0f} MB"
    )
    logger.info("\n".join(lines))
