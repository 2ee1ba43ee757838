"""A run directory: where each of its files lives, and how each is read and written.

The one owner of the run layout; train, evaluate, export, predict, tuning and the
benchmarks reach a run's files only through `RunDir`. Written by training in this
order, each file atomically as soon as it exists:

    config.json        the resolved `keras_art.config.Config` (it makes a folder a run)
    classes.json       task -> class names, in label order
    splits.csv         file, <task>..., split: one row per image
    data_report.json   what data preparation found (counts, exclusions, sampler)
    model.json         the `keras_art.models.model_record.ModelRecord`
    warm_start.json    with train.init_from: the layers loaded from it and skipped
    checkpoints/       epoch_NNNN/{model.npz, optimizer.npz, state.json} per epoch
    best.keras         the best epoch's model, without its optimizer
    history.csv        one row per epoch
    logs/              TensorBoard
    summary.json       written LAST: a run with it is finished
    eval/<name>/       evaluate's reports, one folder per split or collection, each
                       with metrics.json and predictions.npz (what compare reads)

A group of repeats (``python -m keras_art.train --seeds 0,1,2``) is a folder with
``group.json`` (its manifest: the seeds, the shared config) and one run directory per
seed, ``seed-<seed>/``; `GroupDir` owns that layout.

Stdlib only at import (numpy is imported by the checkpoint functions that need it),
so commands can find a run before TensorFlow loads. Errors name the parameter
(``{run_dir}``), which each command renders as its flag.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from keras_art.atomic_files import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from keras_art.errors import ParameterError, UserError

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
SPLITS_FILE = "splits.csv"
DATA_REPORT_FILE = "data_report.json"
MODEL_RECORD_FILE = "model.json"
WARM_START_FILE = "warm_start.json"
CHECKPOINT_DIR = "checkpoints"
BEST_MODEL_FILE = "best.keras"
HISTORY_FILE = "history.csv"
LOGS_DIR = "logs"
SUMMARY_FILE = "summary.json"
EVAL_DIR = "eval"
# Inside eval/<name>/: the report's numbers and the predictions they came from.
EVAL_METRICS_FILE = "metrics.json"
EVAL_PREDICTIONS_FILE = "predictions.npz"
# A group of repeats: its manifest, and each repeat's run directory name prefix.
GROUP_FILE = "group.json"
REPEAT_PREFIX = "seed-"

# An epoch checkpoint: checkpoints/epoch_NNNN/ holding these three files.
CHECKPOINT_MODEL = "model.npz"
CHECKPOINT_OPTIMIZER = "optimizer.npz"
CHECKPOINT_STATE = "state.json"
_EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")

# Which weights a consumer loads: best.keras, or the last epoch checkpoint's.
CHECKPOINTS = ("best", "last")

FILE_NAMES = (
    CONFIG_FILE,
    CLASSES_FILE,
    SPLITS_FILE,
    DATA_REPORT_FILE,
    MODEL_RECORD_FILE,
    WARM_START_FILE,
    BEST_MODEL_FILE,
    HISTORY_FILE,
    SUMMARY_FILE,
    CHECKPOINT_MODEL,
    CHECKPOINT_OPTIMIZER,
    CHECKPOINT_STATE,
    EVAL_METRICS_FILE,
    EVAL_PREDICTIONS_FILE,
    GROUP_FILE,
)
DIR_NAMES = (CHECKPOINT_DIR, LOGS_DIR, EVAL_DIR)

_COLUMN_FILE, _COLUMN_SPLIT = "file", "split"  # splits.csv's first and last columns


class RunDir:
    """One run directory. ``RunDir(path)`` accepts a path or a `RunDir`; it is
    path-like (``Path(run)``, ``os.fspath(run)``), so functions taking a run's path
    take a `RunDir` too."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path.path if isinstance(path, RunDir) else path).expanduser()

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def classes(self) -> Path:
        return self.path / CLASSES_FILE

    @property
    def splits(self) -> Path:
        return self.path / SPLITS_FILE

    @property
    def data_report(self) -> Path:
        return self.path / DATA_REPORT_FILE

    @property
    def model_record(self) -> Path:
        return self.path / MODEL_RECORD_FILE

    @property
    def warm_start(self) -> Path:
        return self.path / WARM_START_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def best_model(self) -> Path:
        return self.path / BEST_MODEL_FILE

    @property
    def history(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def logs(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    def eval_dir(self, name: str) -> Path:
        """``eval/<name>/``: one report (``name``: a split or a collection)."""
        return self.path / EVAL_DIR / safe_name(name)

    def eval_metrics(self, name: str) -> Path:
        """``eval/<name>/metrics.json``: the report's numbers."""
        return self.eval_dir(name) / EVAL_METRICS_FILE

    def eval_predictions(self, name: str) -> Path:
        """``eval/<name>/predictions.npz``: the model's probabilities per image."""
        return self.eval_dir(name) / EVAL_PREDICTIONS_FILE

    def read_eval_metrics(self, name: str) -> dict[str, Any]:
        return self._read_json(f"{EVAL_DIR}/{safe_name(name)}/{EVAL_METRICS_FILE}")

    # ------------------------------------------------------------------ state
    def is_run(self) -> bool:
        """A run directory, finished or not (it has ``config.json``)."""
        return self.config.is_file()

    def is_finished(self) -> bool:
        """The run finished (``summary.json`` is written last)."""
        return self.summary.exists()

    def latest_checkpoint(self) -> Path | None:
        """The newest complete epoch checkpoint folder, or None."""
        return latest_checkpoint(self.checkpoints)

    # ---------------------------------------------------------------- readers
    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (`keras_art.config.config_from_dict` makes it a
        `Config`)."""
        return self._read_json(CONFIG_FILE)

    def read_classes(self) -> dict[str, list[str]]:
        return self._read_json(CLASSES_FILE)

    def read_splits(self) -> list[dict[str, str]]:
        """``splits.csv``'s rows: ``{"file", <task>..., "split"}`` (an empty class
        name where a label is missing)."""
        # surrogateescape: paths with undecodable bytes come back exactly as written.
        text = self._read_bytes(SPLITS_FILE).decode("utf-8", "surrogateescape")
        return list(csv.DictReader(io.StringIO(text)))

    def read_data_report(self) -> dict[str, Any]:
        return self._read_json(DATA_REPORT_FILE)

    def read_model_record(self) -> dict[str, Any]:
        """``model.json``'s raw fields; `keras_art.models.model_record` checks them."""
        return self._read_json(MODEL_RECORD_FILE)

    def read_summary(self) -> dict[str, Any]:
        return self._read_json(SUMMARY_FILE)

    def _read_bytes(self, name: str) -> bytes:
        path = self.path / name
        if not path.is_file():
            raise ParameterError(
                f"{{run_dir}} {self.path}: no {name}. Pass a run directory written by "
                f"python -m keras_art.train."
            )
        return path.read_bytes()

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads(self._read_bytes(name).decode("utf-8"))
        except ValueError as exc:
            raise ParameterError(
                f"{{run_dir}} {self.path}: {name} is not readable JSON ({exc})."
            ) from None

    # ---------------------------------------------------------------- writers
    def write_config(self, text: str) -> Path:
        """``text``: `Config.to_json`'s output (a newline is added)."""
        return atomic_write_text(self.config, text + "\n")

    def write_classes(self, class_names: dict[str, Sequence[str]]) -> Path:
        return atomic_write_json(self.classes, class_names)

    def write_splits(
        self, tasks: Sequence[str], rows: Iterable[tuple[str, Sequence[str], str]]
    ) -> Path:
        """``rows``: ``(file, class name per task ("" when missing), split)``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([_COLUMN_FILE, *tasks, _COLUMN_SPLIT])
        for file, names, split in rows:
            writer.writerow([file, *names, split])
        # surrogateescape writes undecodable path bytes back exactly as they were.
        data = buffer.getvalue().encode("utf-8", "surrogateescape")
        return atomic_write_bytes(self.splits, data)

    def write_data_report(self, report: dict[str, Any]) -> Path:
        return atomic_write_json(self.data_report, report)

    def write_model_record(self, fields: dict[str, Any]) -> Path:
        return atomic_write_json(self.model_record, fields)

    def write_warm_start(self, report: dict[str, Any]) -> Path:
        """What ``train.init_from`` loaded (`keras_art.models.warm_start`)."""
        return atomic_write_json(self.warm_start, report)

    def read_warm_start(self) -> dict[str, Any]:
        return self._read_json(WARM_START_FILE)

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """The run's last file: after it the run counts as finished."""
        return atomic_write_json(self.summary, summary)

    def eval_writer(self, name: str):
        """``with run.eval_writer(name) as folder:`` fill ``folder``; it becomes
        ``eval/<name>/`` when the block ends (replacing an earlier report), or
        vanishes if it raises."""
        return atomic_dir(self.eval_dir(name), replace=True)


# ------------------------------------------------------------ finding a run
def open_finished(run_dir: str | os.PathLike) -> RunDir:
    """``run_dir`` as a `RunDir`, or one `ParameterError` when it is not a
    finished run."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise ParameterError(
            f"{{run_dir}} {run_dir}: no such folder. Pass a run directory that "
            f"python -m keras_art.train printed."
        )
    if GroupDir(run.path).is_group():
        raise ParameterError(
            f"{{run_dir}} {run_dir}: a group of repeats ({GROUP_FILE}), not one run. "
            f"Pass one of its runs, e.g. {run.path / repeat_name(0)}."
        )
    if not run.is_run():
        raise ParameterError(
            f"{{run_dir}} {run_dir}: not a run directory (no {CONFIG_FILE})."
        )
    if not run.summary.is_file():
        raise ParameterError(
            f"{{run_dir}} {run_dir}: the run is unfinished (no {SUMMARY_FILE}). "
            f"Finish it with python -m keras_art.train --resume {run_dir}, or pass a "
            f"finished run."
        )
    return run


def find_resumable(run_dir: str, workdir: str | os.PathLike) -> RunDir:
    """The unfinished run ``run_dir`` names, or with ``run_dir="latest"`` the
    newest unfinished run under ``workdir``."""
    if run_dir != "latest":
        run = RunDir(run_dir)
        if not run.is_run():
            raise ParameterError(
                f"{{run_dir}} {run_dir}: not a run directory (no {CONFIG_FILE}). Pass "
                f"the folder a previous train command printed."
            )
        if run.is_finished():
            raise ParameterError(f"{{run_dir}} {run_dir}: that run already finished.")
        return run
    root = Path(workdir).expanduser()
    candidates = [
        run
        for run in (RunDir(p.parent) for p in root.glob(f"*/{CONFIG_FILE}"))
        if not run.is_finished()
    ]
    if not candidates:
        raise ParameterError(
            f"{{run_dir}}: no unfinished run in {root}. Pass the run directory "
            f"explicitly."
        )
    return max(candidates, key=lambda run: run.config.stat().st_mtime)


def safe_name(name: str) -> str:
    """``name`` as one folder name (other characters become ``_``, 80 at most)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


# ------------------------------------------------------- a group of repeats
def repeat_name(seed: int) -> str:
    """The run directory name of the repeat trained with ``seed``."""
    return f"{REPEAT_PREFIX}{int(seed)}"


class GroupDir:
    """A group of repeats: ``group.json`` (the manifest) and ``seed-<seed>/`` run
    directories, one per seed. Path-like, as `RunDir`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path.path if isinstance(path, GroupDir) else path).expanduser()

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"GroupDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def manifest(self) -> Path:
        return self.path / GROUP_FILE

    def is_group(self) -> bool:
        return self.manifest.is_file()

    def run(self, seed: int) -> RunDir:
        """The run directory of the repeat trained with ``seed``."""
        return RunDir(self.path / repeat_name(seed))

    def read_manifest(self) -> dict[str, Any]:
        """``group.json``: at least ``{"seeds": [...]}``; one `ParameterError`
        naming ``group_dir`` when it is missing or unreadable."""
        if not self.manifest.is_file():
            raise ParameterError(
                f"{{group_dir}} {self.path}: no {GROUP_FILE}. Pass a folder written "
                f"by python -m keras_art.train --seeds."
            )
        try:
            manifest = json.loads(self.manifest.read_text(encoding="utf-8"))
            [int(s) for s in manifest["seeds"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ParameterError(
                f"{{group_dir}} {self.path}: {GROUP_FILE} is not readable ({exc})."
            ) from None
        return manifest

    def runs(self) -> list[RunDir]:
        """The repeats' run directories, in the manifest's seed order."""
        return [self.run(seed) for seed in self.read_manifest()["seeds"]]

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        return atomic_write_json(self.manifest, manifest)


# ---------------------------------------------------------- epoch checkpoints
def epoch_checkpoint_name(completed_epochs: int) -> str:
    return f"epoch_{completed_epochs:04d}"


def completed_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(completed_epochs, folder)`` of every complete checkpoint under
    ``directory`` (a run's ``checkpoints/``), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = _EPOCH_DIR.match(p.name)
        if m and (p / CHECKPOINT_STATE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    done = completed_checkpoints(directory)
    return done[-1][1] if done else None


def write_checkpoint(
    directory: str | os.PathLike,
    completed_epochs: int,
    model_arrays: Sequence[Any],
    optimizer_arrays: Sequence[Any],
    state: dict[str, Any],
) -> Path:
    """Write ``checkpoints/epoch_NNNN/`` whole or not at all (`atomic_dir`; a
    re-run epoch after a resume replaces its folder); every file is fsynced."""
    final = Path(directory) / epoch_checkpoint_name(completed_epochs)
    with atomic_dir(final, replace=True) as tmp:
        _write_arrays(tmp / CHECKPOINT_MODEL, model_arrays)
        _write_arrays(tmp / CHECKPOINT_OPTIMIZER, optimizer_arrays)
        _write_synced(tmp / CHECKPOINT_STATE, json.dumps(state, indent=1).encode())
    return final


def read_checkpoint_state(folder: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(folder) / CHECKPOINT_STATE).read_text(encoding="utf-8"))


def restore_checkpoint_arrays(variables, folder: str | os.PathLike, part: str) -> None:
    """Assign checkpoint ``folder``'s ``part`` (``"model"`` or ``"optimizer"``)
    arrays to ``variables`` (anything with ``shape`` and ``assign``), in order; a
    `UserError` when they do not match (another model or config)."""
    import numpy as np

    folder = Path(folder)
    name = {"model": CHECKPOINT_MODEL, "optimizer": CHECKPOINT_OPTIMIZER}[part]
    with np.load(folder / name) as data:
        arrays = [data[f"a{i}"] for i in range(len(data.files))]
    if len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape)
        for a, v in zip(arrays, variables, strict=False)
    ):
        raise UserError(
            f"Checkpoint {folder} does not match this {part} ({len(arrays)} saved "
            f"variables vs {len(variables)}). Resume with the run's own {CONFIG_FILE}, "
            f"or start a new run."
        )
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a)


def _write_arrays(path: Path, arrays: Sequence[Any]) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.savez(fh, **{f"a{i}": a for i, a in enumerate(arrays)})
        fh.flush()
        os.fsync(fh.fileno())


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
