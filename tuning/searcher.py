"""`search`: a KerasTuner search over `tuning.space`, trials run by
`tuning.hypermodel.PaintingHyperModel`, results in ``<directory>/<project>/``.

KerasTuner keeps its own state there (``oracle.json``, ``trial_*/``): re-running the
same command reloads it and goes on without repeating finished trials (a trial that
was running when the process died, even by ``kill -9``, runs again). After every
trial `tuning.results` rewrites ``results.csv``, ``summary.md`` and
``best_config.json`` and one progress line is logged. A trial that fails (NaN, out
of memory, a combination the config refuses) is recorded as failed and the search
goes on; ``tune.max_failed_trials`` failures in a row stop it.

Distributed (``chief``/``tuner_id``, or KerasTuner's ``KERASTUNER_*`` variables; see
`tuning.cluster`): the chief runs only the oracle (`tuning.chief`: no data, no
model) and is the one process that writes the files above and ``search.json``; each
worker runs trials on its own devices and writes only its trial folders and
KerasTuner's ``<tuner id>.json``. All share the search folder: the workers check
their settings against the chief's ``search.json`` and read one feature cache
(`tuning.shared_features`).
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

import grpc
import keras

from keras_art.atomic_files import atomic_write_json
from keras_art.config import Config, load_config_file
from keras_art.errors import ParameterError, UserError
from keras_art.training.strategies import make_strategy
from keras_art.training.train import set_global_policies, train
from tuning import state_snapshot
from tuning.chief import ChiefOracle, serve
from tuning.cluster import Cluster, cluster_env, resolve_cluster
from tuning.heartbeat import Heartbeat
from tuning.hypermodel import (
    PaintingHyperModel,
    SearchSpace,
    objective,
    prepare_trial_data,
)
from tuning.results import progress_line, trial_row, trial_rows, write_results
from tuning.space import resolve_space
from tuning.worker import PatientClient, client_timeout

logger = logging.getLogger(__name__)


@dataclass
class SearchResult:
    folder: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_config: Path | None
    retrained_run: Path | None = None


def search(
    cfg: Config,
    *,
    overwrite: bool = False,
    retrain_best: bool = False,
    chief: str | None = None,
    tuner_id: str | None = None,
) -> SearchResult:
    """Run (or continue) the search ``cfg.tune`` describes over ``cfg``'s data.

    ``chief`` (``HOST:PORT``) and ``tuner_id`` (``chief``, or a worker's name) make
    this process one of a distributed search (see module doc): the chief returns
    when the last trial has ended; a worker returns the rows of the trials it ran.
    """
    cluster = resolve_cluster(chief, tuner_id)
    base, space, settings = plan_search(cfg)
    if cluster is None:
        result = _search_alone(base, space, settings, overwrite)
    elif cluster.is_chief:
        result = _search_as_chief(base, space, settings, overwrite, cluster)
    else:
        if overwrite or retrain_best:
            raise ParameterError(
                "{overwrite} and {retrain_best} are the chief's to give; a worker "
                "runs the chief's trials as they come."
            )
        return _search_as_worker(base, space, settings, cluster)
    if retrain_best:
        result.retrained_run = _retrain(result)
    return result


def _search_alone(base: Config, space: dict, settings: dict, overwrite: bool):
    folder = Path(settings["folder"])
    record, overwrite = _check_folder(folder, base, space, overwrite)
    strategy = make_strategy(base.train.strategy)
    _log_plan(settings, space, strategy.num_replicas_in_sync)
    data = prepare_trial_data(base, strategy, cache_features=_caches(base))
    hypermodel = PaintingHyperModel(
        base, space, data, strategy, keep_checkpoints=settings["tuner"] == "hyperband"
    )
    tuner = make_tuner(hypermodel, base, folder, overwrite, space, settings)
    write_search_record(folder, record)  # after KerasTuner's --overwrite cleared it
    start = time.time()
    _run_trials(tuner, base, folder)
    return _finish(tuner, folder, start)


def _check_folder(folder: Path, base: Config, space: dict, overwrite: bool):
    """The search record to write and whether to start afresh (asked, or nothing
    to continue from), after the checks that need no data: a wrong folder is a
    one-line error, not minutes in."""
    if not overwrite and state_snapshot.restore_if_broken(folder) == "fresh":
        overwrite = True
    return check_same_search(folder, base, space, overwrite=overwrite), overwrite


def _caches(base: Config) -> bool:
    return base.tune.stage == "head" or base.train.feature_cache


def _run_trials(tuner, base: Config, folder: Path) -> None:
    tuner.search(
        epochs=base.tune.epochs,
        callbacks=[
            keras.callbacks.TensorBoard(
                log_dir=str(folder / "tensorboard"), write_graph=False, profile_batch=0
            )
        ],
        verbose=0,
    )


def _finish(tuner, folder: Path, start: float) -> SearchResult:
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
    return SearchResult(
        folder, rows, best, folder / "best_config.json" if best else None
    )


def _search_as_chief(base, space, settings, overwrite, cluster: Cluster):
    """Serve the oracle until the last trial has ended (`tuning.chief`)."""
    folder = Path(settings["folder"])
    record, overwrite = _check_folder(folder, base, space, overwrite)
    _log_plan(settings, space, None)
    with cluster_env(cluster):
        tuner = make_tuner(SearchSpace(space), base, folder, overwrite, space, settings)
        write_search_record(folder, record)
        tuner.oracle.verbose = 0  # the progress lines replace KerasTuner's display
        tuner.save()
        chief = ChiefOracle(
            tuner.oracle,
            project=folder,
            on_end=tuner.report_trial,
            worker_timeout=base.tune.worker_timeout,
        )
        logger.info("search: chief serving the oracle on %s", cluster.address)
        start = time.time()
        serve(chief, cluster.address, idle_timeout=base.tune.idle_timeout)
    if chief.failure is not None:
        raise RuntimeError(chief.failure)  # as KerasTuner raises it on its own
    return _finish(tuner, folder, start)


def _search_as_worker(base, space, settings, cluster: Cluster) -> SearchResult:
    """Run the chief's trials until it says stop; write nothing shared."""
    tune = base.tune
    beat = min(10.0, max(0.5, tune.worker_timeout / 5))
    heartbeat = Heartbeat(cluster.address, cluster.tuner_id, interval=beat)
    try:
        heartbeat.start(wait=tune.idle_timeout)
    except grpc.RpcError as exc:
        raise ParameterError(
            f"No chief answers at {cluster.address} after {tune.idle_timeout:.0f} s "
            f"({_code(exc)}). Start the chief first (tuner id chief) and give "
            f"every worker its address ({{chief}} or KERASTUNER_ORACLE_IP/PORT)."
        ) from None
    try:
        check_joins_search(Path(settings["folder"]), base, space)
        return _work(base, space, settings, cluster)
    except grpc.RpcError as exc:
        raise UserError(
            f"The chief at {cluster.address} stopped answering ({_code(exc)}). "
            f"Run it again with the same settings (it goes on from its last "
            f"finished trial), then this worker."
        ) from None
    finally:
        heartbeat.stop()


def _work(base, space, settings, cluster: Cluster) -> SearchResult:
    folder = Path(settings["folder"])
    strategy = make_strategy(base.train.strategy)
    _log_plan(settings, space, strategy.num_replicas_in_sync)
    data = prepare_trial_data(
        base, strategy, cache_features=_caches(base), shared_cache=folder
    )
    hypermodel = PaintingHyperModel(
        base, space, data, strategy, keep_checkpoints=settings["tuner"] == "hyperband"
    )
    with cluster_env(cluster), client_timeout(base.tune.idle_timeout):
        tuner = make_tuner(
            hypermodel, base, folder, False, space, settings, worker=True
        )
        tuner.oracle = PatientClient(tuner.oracle, poll=1.0)
        _run_trials(tuner, base, folder)
    logger.info(
        "search: worker %s ran %d trial(s); the chief at %s writes the results",
        cluster.tuner_id,
        len(tuner.ran),
        cluster.address,
    )
    return SearchResult(folder, tuner.ran, None, None)


def _code(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    return code.name if code is not None else type(exc).__name__


def plan_search(cfg: Config) -> tuple[Config, dict, dict]:
    """The search's base config, its space and its settings (folder, tuner, ...);
    every check that needs no data, so bad flags fail at once."""
    base = copy.deepcopy(cfg)
    if base.train.strategy == "multi_worker":
        raise ParameterError(
            "A trial trains on one machine ({train.strategy} auto, default or "
            "mirrored); to spread the trials over machines, run a distributed "
            "search ({chief} and {tuner_id})."
        )
    _check_cluster_settings(base.tune)
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


def _log_plan(settings: dict, space: dict, replicas: int | None) -> None:
    """One line: the tuner, what is searched, the replicas a trial trains on
    (None: this process trains nothing, the chief), the folder."""
    searched = [n for n, spec in space.items() if "fixed" not in spec]
    grid = settings["grid"]
    logger.info(
        "search: %s tuner, stage %s, %d hyperparameter(s) searched (%s)%s, %s, in %s",
        settings["tuner"],
        settings["stage"],
        len(searched),
        ", ".join(searched),
        f"; a grid of at most {grid} combinations" if grid else "",
        "trials on the workers" if replicas is None else f"{replicas} replica(s)",
        settings["folder"],
    )


def make_tuner(
    hypermodel, base: Config, folder: Path, overwrite, space, settings, *, worker=False
):
    """The KerasTuner tuner ``base.tune.tuner`` over ``space``, reporting after
    every trial (a ``worker`` of a distributed search only logs its trials)."""
    import keras_tuner

    name = base.tune.tuner
    classes = {
        "hyperband": keras_tuner.Hyperband,
        "bayesian": keras_tuner.BayesianOptimization,
        "random": keras_tuner.RandomSearch,
        "grid": keras_tuner.GridSearch,
    }
    kwargs: dict[str, Any] = {
        # The tuner learns the space from SearchSpace (no model built), then
        # trains with ``hypermodel``.
        "hypermodel": SearchSpace(space),
        "objective": objective(),
        "directory": str(folder.parent),
        "project_name": folder.name,
        "overwrite": overwrite,
        "seed": base.train.seed,
        "max_consecutive_failed_trials": base.tune.max_failed_trials,
        "max_retries_per_trial": base.tune.max_retries,
    }
    if name == "hyperband":
        kwargs.update(max_epochs=base.tune.epochs, factor=base.tune.hyperband_factor)
    else:
        kwargs["max_trials"] = base.tune.max_trials or 20
    reporting = type(
        f"Reporting{classes[name].__name__}", (_Reporting, classes[name]), {}
    )
    tuner = reporting(**kwargs)
    tuner.hypermodel = hypermodel
    tuner.configure_reporting(base, list(space), settings, worker=worker)
    if name == "hyperband" and base.tune.max_trials:
        tuner.oracle.max_trials = base.tune.max_trials
    return tuner


class _Reporting:
    """Mixed into a KerasTuner tuner: after each trial, the result files and one
    progress line (KerasTuner's own display is turned off with ``verbose=0``); on
    a worker of a distributed search, the line only (``ran``: its trials' rows)."""

    def configure_reporting(self, base: Config, names, settings: dict, *, worker):
        self._base, self._names, self._settings = base, names, settings
        self._worker = worker
        self.ran: list[dict[str, Any]] = []

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

    def report_trial(self, trial_id: str) -> None:
        """After a trial ended (here, or on a worker for the chief): a snapshot of
        KerasTuner's state, the result files and the trial's line."""
        state_snapshot.save(Path(self._settings["folder"]))
        rows, best = self.write_results()
        row = next(r for r in rows if r["trial"] == trial_id)
        logger.info(progress_line(row, self._names, best, self._total()))

    def on_trial_end(self, trial):
        # KerasTuner ends the trial in the oracle (the chief's, for a worker) and
        # saves its state.
        super().on_trial_end(trial)
        if not self._worker:
            self.report_trial(trial.trial_id)
            return
        row = trial_row(self.oracle.get_trial(trial.trial_id), self._names)
        self.ran.append(row)
        line = progress_line(row, self._names, None, self._total())
        logger.info("%s: %s", self.tuner_id, line)  # beside the chief's own line

    def _total(self):
        return self._settings.get("total") or self.oracle.max_trials


SEARCH_RECORD = "search.json"
# Settings a continued search may change: how long it runs, where it writes, how
# it copes with failures and lost workers.
MAY_CHANGE = (
    "tune.max_trials",
    "tune.max_failed_trials",
    "tune.max_retries",
    "tune.worker_timeout",
    "tune.idle_timeout",
    "tune.directory",
    "workdir",
)


def check_same_search(folder: Path, base: Config, space: dict, *, overwrite: bool):
    """This search's settings, as ``search.json`` records them; a `UserError` when
    ``folder`` holds a search started with other settings (KerasTuner would
    silently reload its trials into this one)."""
    record = search_record(base, space)
    path = folder / SEARCH_RECORD
    if overwrite or not path.is_file():
        return record
    changed = _changed(json.loads(path.read_text(encoding="utf-8")), record)
    if changed:
        raise ParameterError(
            f"{folder} holds a search started with other settings ({changed}). "
            f"Pass {{tune.project}} NAME for a new search, or {{overwrite}} to "
            f"replace it."
        )
    return record


def check_joins_search(folder: Path, base: Config, space: dict) -> None:
    """A worker's check: the chief's ``search.json`` is in ``folder`` (the two
    share it) and records this worker's settings."""
    path = folder / SEARCH_RECORD
    if not path.is_file():
        raise ParameterError(
            f"{folder} holds no {SEARCH_RECORD} from the chief. The chief and "
            f"its workers share {{tune.directory}} (on a network file system across "
            f"machines) and the settings that name the project."
        )
    changed = _changed(
        json.loads(path.read_text(encoding="utf-8")), search_record(base, space)
    )
    if changed:
        raise ParameterError(
            f"This worker's settings differ from the chief's search in {folder} "
            f"({changed}). Give the workers the chief's settings."
        )


def search_record(base: Config, space: dict) -> dict:
    record = {"config": _flat(base.to_dict()), "space": json.loads(json.dumps(space))}
    for key in MAY_CHANGE:
        record["config"].pop(key, None)
    return record


def _changed(old: dict, new: dict) -> str:
    """The settings that differ between two records, for a message ('' if none)."""
    changed = sorted(
        k
        for k in set(old["config"]) | set(new["config"])
        if old["config"].get(k) != new["config"].get(k)
    )
    if old["space"] != new["space"]:
        changed.insert(0, "the search space")
    return ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")


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


def _check_cluster_settings(tune) -> None:
    if tune.max_retries < 0:
        raise ParameterError(
            f"{{tune.max_retries}} {tune.max_retries}: give 0 (a crashed trial "
            f"fails at once) or more."
        )
    for key in ("worker_timeout", "idle_timeout"):
        if not getattr(tune, key) > 0:
            raise ParameterError(
                f"{{tune.{key}}} {getattr(tune, key)}: give a number of seconds "
                f"above 0."
            )


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
