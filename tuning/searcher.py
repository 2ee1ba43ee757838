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
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_art.config import Config
from keras_art.errors import UserError
from tuning import state_snapshot
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
    import keras

    from keras_art.training.strategies import make_strategy
    from tuning.hypermodel import PaintingHyperModel, prepare_trial_data

    base = copy.deepcopy(cfg)
    if base.train.strategy == "multi_worker":
        raise UserError(
            "A search runs on one machine (--strategy auto, default or mirrored); "
            "KerasTuner's distributed tuning (KERASTUNER_ORACLE_*) is not wired up."
        )
    space = resolve_space(base.tune, base)
    tuner_name = base.tune.tuner
    _check_grid(tuner_name, space)
    project = base.tune.project or f"{base.task}-{base.tune.stage}"
    folder = Path(base.tune.directory).expanduser() / project
    names = list(space)
    strategy = make_strategy(base.train.strategy)
    grid = grid_size(space)
    logger.info(
        "search: %s tuner, stage %s, %d hyperparameter(s) searched (%s)%s, "
        "%d replica(s), in %s",
        tuner_name,
        base.tune.stage,
        sum("fixed" not in s for s in space.values()),
        ", ".join(n for n, s in space.items() if "fixed" not in s),
        f"; a grid of at most {grid} combinations" if grid else "",
        strategy.num_replicas_in_sync,
        folder,
    )
    cache = base.tune.stage == "head" or base.train.feature_cache
    data = prepare_trial_data(base, strategy, cache_features=cache)
    hypermodel = PaintingHyperModel(
        base, space, data, strategy, keep_checkpoints=tuner_name == "hyperband"
    )
    settings = {
        "project": project,
        "tuner": tuner_name,
        "stage": base.tune.stage,
        "space": base.tune.space,
        "task": base.task,
        "folder": str(folder),
        "total": min(grid, base.tune.max_trials or 20)
        if tuner_name == "grid"
        else None,
    }
    if not overwrite and state_snapshot.restore_if_broken(folder) == "fresh":
        overwrite = True
    tuner = make_tuner(tuner_name, hypermodel, base, folder, overwrite, names, settings)
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


def make_tuner(
    name, hypermodel, base: Config, folder: Path, overwrite, names, settings
):
    """The KerasTuner tuner ``name``, reporting after every trial."""
    import keras_tuner

    from tuning.hypermodel import objective

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
        from tuning.results import trial_rows, write_results

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
        from tuning.results import progress_line

        state_snapshot.save(Path(self._settings["folder"]))
        rows, best = self.write_results()
        row = next(r for r in rows if r["trial"] == trial.trial_id)
        total = self._settings.get("total") or self.oracle.max_trials
        logger.info(progress_line(row, self._names, best, total))


def _retrain(result: SearchResult) -> Path:
    """Train the best configuration as a normal run (with its test report)."""
    if result.best_config is None:
        raise UserError(
            "--retrain-best: no trial completed, so there is no best config."
        )
    from keras_art.config import load_config_file
    from keras_art.training.train import set_global_policies, train

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
        raise UserError(
            f"--tuner grid needs a step or a list of values for every range; "
            f"{', '.join(continuous)} has neither. Give them, e.g. --set "
            f"'tune.values.{continuous[0]}=[...]', or use another tuner."
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
