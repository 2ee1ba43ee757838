"""`search`: a KerasTuner search over `tuning.space`, trials run by
`tuning.hypermodel.PaintingHyperModel`, results in ``<directory>/<project>/``.

KerasTuner keeps its own state there (``oracle.json``, ``trial_*/``): re-running the
same command reloads it and goes on without repeating finished trials (a trial that
was running when the process died, even by ``kill -9``, runs again). After every
trial `tuning.results` rewrites ``results.csv``, ``summary.md`` and
``best_config.json`` and one progress line is logged. A trial that fails (NaN, out
of memory, a combination the config refuses) is recorded as failed and the search
goes on; ``tune.max_failed_trials`` failures in a row stop it.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from keras_art.atomic_files import atomic_write_json
from keras_art.config import Config, load_config_file
from keras_art.errors import ParameterError
from keras_art.training.strategies import make_strategy
from keras_art.training.train import set_global_policies, train
from tuning import state_snapshot
from tuning.hypermodel import PaintingHyperModel, objective, prepare_trial_data
from tuning.results import progress_line, trial_rows, write_results
from tuning.space import resolve_space

logger = logging.getLogger(__name__)


@dataclass
class SearchResult:
    folder: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_config: Path | None
    retrained_run: Path | None = None


def search(
    cfg: Config, *, overwrite: bool = False, retrain_best: bool = False
) -> SearchResult:
    """Run (or continue) the search ``cfg.tune`` describes over ``cfg``'s data."""

    base, space, settings = plan_search(cfg)
    folder = Path(settings["folder"])
    # Before the data is read: a wrong folder is a one-line error, not minutes in.
    if not overwrite and state_snapshot.restore_if_broken(folder) == "fresh":
        overwrite = True
    record = check_same_search(folder, base, space, overwrite=overwrite)
    strategy = make_strategy(base.train.strategy)
    _log_plan(settings, space, strategy)
    cache = base.tune.stage == "head" or base.train.feature_cache
    data = prepare_trial_data(base, strategy, cache_features=cache)
    hypermodel = PaintingHyperModel(
        base, space, data, strategy, keep_checkpoints=settings["tuner"] == "hyperband"
    )
    tuner = make_tuner(hypermodel, base, folder, overwrite, list(space), settings)
    write_search_record(folder, record)  # after KerasTuner's --overwrite cleared it
    start = time.time()
    tuner.search(
        epochs=base.tune.epochs,
        callbacks=[
            keras.callbacks.TensorBoard(
                log_dir=str(folder / "tensorboard"), write_graph=False, profile_batch=0
            )
        ],
        verbose=0,
    )
    rows, best = tuner.write_results()
    logger.info(
        "search: %d trial(s) in %s (%.0f s this session)%s",
        len(rows),
        folder,
        time.time() - start,
        f"; best val macro-F1 {best['val_f1']:.4f} (trial {best['trial']})"
        if best
        else "; no trial completed",
    )
    result = SearchResult(
        folder, rows, best, folder / "best_config.json" if best else None
    )
    if retrain_best:
        result.retrained_run = _retrain(result)
    return result


def plan_search(cfg: Config) -> tuple[Config, dict, dict]:
    """The search's base config, its space and its settings (folder, tuner, ...);
    every check that needs no data, so bad flags fail at once."""
    base = copy.deepcopy(cfg)
    if base.train.strategy == "multi_worker":
        raise ParameterError(
            "A search runs on one machine ({train.strategy} auto, default or "
            "mirrored); KerasTuner's distributed tuning (KERASTUNER_ORACLE_*) is "
            "not wired up."
        )
    space = resolve_space(base.tune, base)
    tuner = base.tune.tuner
    _check_grid(tuner, space)
    project = base.tune.project or default_project(base.tune, base.task)
    grid = grid_size(space)
    settings = {
        "project": project,
        "tuner": tuner,
        "stage": base.tune.stage,
        "space": base.tune.space,
        "task": base.task,
        "folder": str(Path(base.tune.directory).expanduser() / project),
        "grid": grid,
        "total": min(grid, base.tune.max_trials or 20) if tuner == "grid" else None,
    }
    return base, space, settings


def default_project(tune, task: str) -> str:
    """``<task>-<stage>``, plus the space's name when it is not the default one
    (``artist-head-seed002``; a space file adds its stem)."""
    project = f"{task}-{tune.stage}"
    if tune.space != "default":
        project += f"-{Path(tune.space).stem}"
    return project


def _log_plan(settings: dict, space: dict, strategy) -> None:
    searched = [n for n, spec in space.items() if "fixed" not in spec]
    grid = settings["grid"]
    logger.info(
        "search: %s tuner, stage %s, %d hyperparameter(s) searched (%s)%s, "
        "%d replica(s), in %s",
        settings["tuner"],
        settings["stage"],
        len(searched),
        ", ".join(searched),
        f"; a grid of at most {grid} combinations" if grid else "",
        strategy.num_replicas_in_sync,
        settings["folder"],
    )


def make_tuner(hypermodel, base: Config, folder: Path, overwrite, names, settings):
    """The KerasTuner tuner ``base.tune.tuner``, reporting after every trial."""
    import keras_tuner

    name = base.tune.tuner

    name = base.tune.tuner
    classes = {
        "hyperband": keras_tuner.Hyperband,
        "bayesian": keras_tuner.BayesianOptimization,
        "random": keras_tuner.RandomSearch,
        "grid": keras_tuner.GridSearch,
    }
    kwargs: dict[str, Any] = {
        "hypermodel": hypermodel,
        "objective": objective(),
        "directory": str(folder.parent),
        "project_name": folder.name,
        "overwrite": overwrite,
        "seed": base.train.seed,
        "max_consecutive_failed_trials": base.tune.max_failed_trials,
    }
    if name == "hyperband":
        kwargs.update(max_epochs=base.tune.epochs, factor=base.tune.hyperband_factor)
    else:
        kwargs["max_trials"] = base.tune.max_trials or 20
    reporting = type(
        f"Reporting{classes[name].__name__}", (_Reporting, classes[name]), {}
    )
    tuner = reporting(**kwargs)
    tuner.configure_reporting(base, names, settings)
    if name == "hyperband" and base.tune.max_trials:
        tuner.oracle.max_trials = base.tune.max_trials
    return tuner


class _Reporting:
    """Mixed into a KerasTuner tuner: after each trial, the result files and one
    progress line (KerasTuner's own display is turned off with ``verbose=0``)."""

    def configure_reporting(self, base: Config, names: list[str], settings: dict):
        self._base, self._names, self._settings = base, names, settings

    def write_results(self):
        """Rewrite the result files; return the rows and the best trial's row
        (KerasTuner's own ranking by the objective)."""

        rows = trial_rows(self.oracle, self._names)
        # get_best_trials pads with unfinished trials when none completed.
        ranked = [t for t in self.oracle.get_best_trials(1) if t.status == "COMPLETED"]
        best_id = ranked[0].trial_id if ranked else None
        best = next((r for r in rows if r["trial"] == best_id), None)
        folder = Path(self._settings["folder"])
        write_results(folder, rows, self._names, self._settings, self._base, best)
        return rows, best

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # KerasTuner saves its state here

        state_snapshot.save(Path(self._settings["folder"]))
        rows, best = self.write_results()
        row = next(r for r in rows if r["trial"] == trial.trial_id)
        total = self._settings.get("total") or self.oracle.max_trials
        logger.info(progress_line(row, self._names, best, total))


SEARCH_RECORD = "search.json"
# Settings a continued search may change: how long it runs, where it writes.
MAY_CHANGE = ("tune.max_trials", "tune.max_failed_trials", "tune.directory", "workdir")


def check_same_search(folder: Path, base: Config, space: dict, *, overwrite: bool):
    """This search's settings, as ``search.json`` records them; a `UserError` when
    ``folder`` holds a search started with other settings (KerasTuner would
    silently reload its trials into this one)."""
    record = {"config": _flat(base.to_dict()), "space": json.loads(json.dumps(space))}
    for key in MAY_CHANGE:
        record["config"].pop(key, None)
    path = folder / SEARCH_RECORD
    if overwrite or not path.is_file():
        return record
    old = json.loads(path.read_text(encoding="utf-8"))
    changed = sorted(
        k
        for k in set(old["config"]) | set(record["config"])
        if old["config"].get(k) != record["config"].get(k)
    )
    if old["space"] != record["space"]:
        changed.insert(0, "the search space")
    if changed:
        raise ParameterError(
            f"{folder} holds a search started with other settings "
            f"({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''}). "
            f"Pass {{tune.project}} NAME for a new search, or {{overwrite}} to "
            f"replace it."
        )
    return record


def write_search_record(folder: Path, record: dict) -> None:
    atomic_write_json(folder / SEARCH_RECORD, record)


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key not in ("values", "fixed", "lr_groups"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _retrain(result: SearchResult) -> Path:
    """Train the best configuration as a normal run (with its test report)."""
    if result.best_config is None:
        raise ParameterError(
            "{retrain_best}: no trial completed, so there is no best config."
        )

    cfg = load_config_file(result.best_config).validate()
    logger.info("search: retraining the best configuration (%s)", result.best_config)
    set_global_policies(cfg)
    run = train(cfg)
    if run.chief and cfg.train.report and "test" in run.summary["metrics"]:
        from keras_art.evaluation import evaluate

        evaluate(run.run_dir, split="test")
    return run.run_dir


def _check_grid(tuner: str, space: dict) -> None:
    if tuner != "grid":
        return
    continuous = [n for n, s in space.items() if "min" in s and "step" not in s]
    if continuous:
        raise ParameterError(
            f"{{tune.tuner}} grid needs a step or a list of values for every range; "
            f"{', '.join(continuous)} has neither. Give them, e.g. "
            f"tune.values.{continuous[0]}=[...], or use another tuner."
        )


def grid_size(space: dict) -> int | None:
    """How many combinations the searched names make, or None when one of them is
    a continuous range."""
    sizes = []
    for spec in space.values():
        if "fixed" in spec:
            continue
        if "values" in spec:
            sizes.append(len(spec["values"]))
        elif "step" in spec:
            sizes.append(int(round((spec["max"] - spec["min"]) / spec["step"])) + 1)
        else:
            return None
    return math.prod(sizes)
