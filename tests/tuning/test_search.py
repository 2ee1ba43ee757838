"""Searches on the embedded sample at 32 px: the command, the objective's direction,
failed trials, resume after kill -9, MirroredStrategy, bad flags."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from keras_art.config import build_config, load_config_file
from tuning.search import main
from tuning.searcher import search

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ["--preset", "smoke", "--task", "artist", "--weights", "none", "--epochs", "2"]


def _rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _cfg(tmp_path, *overrides):
    cfg, _ = build_config(
        "smoke",
        overrides=[
            "task=artist",
            "model.weights=none",
            f"tune.directory={tmp_path}",
            "tune.epochs=2",
            *overrides,
        ],
    )
    return cfg.validate()


def test_cli_search_writes_results_and_the_best_config_trains(tmp_path, capsys):
    code = main(
        [
            *SMOKE,
            "--tuner", "random",
            "--max-trials", "3",
            "--directory", str(tmp_path / "search"),
            "--workdir", str(tmp_path / "runs"),
            "--retrain-best",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    folder = tmp_path / "search" / "artist-head"
    rows = _rows(folder)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"COMPLETED"}
    assert all(float(r["seconds"]) > 0 and r["epochs"] for r in rows)
    # One progress line per trial, with its values and score, and the best so far.
    assert out.count("val_f1 ") == 3 and out.count("| best ") == 3
    summary = (folder / "summary.md").read_text()
    assert "| rank | trial | head |" in summary and "val macro-F1" in summary
    assert "python -m keras_art.train --config" in summary
    # KerasTuner's own ranking picks the best trial: it must be the highest val
    # macro-F1 (an objective minimised by mistake would pick the lowest).
    scores = [float(r["val_f1"]) for r in rows]
    assert len(set(scores)) > 1, "need distinct scores to tell max from min"
    best = max(rows, key=lambda r: float(r["val_f1"]))
    assert f"Best: trial {best['trial']} " in summary
    # best_config.json is a full config `keras_art.train --config` takes as is...
    cfg = load_config_file(folder / "best_config.json").validate()
    assert cfg.model.head == best["head"]
    assert cfg.train.lr_head == pytest.approx(float(best["lr_head"]))
    # ...with the run's own schedule, not a trial's frozen backbone.
    assert cfg.train.unfreeze_epoch == 1 and cfg.train.epochs == 2
    # --retrain-best trained it as a normal run directory.
    run_dir = Path(out.split("run directory: ")[1].splitlines()[0])
    summary_json = json.loads((run_dir / "summary.json").read_text())
    assert summary_json["head"] == best["head"]
    # The same folder with other settings is refused, not silently continued.
    again = main([*SMOKE, "--tuner", "random", "--directory", str(tmp_path / "search"),
                  "--set", "tune.fixed.head=gap"])  # fmt: skip
    err = capsys.readouterr().err
    assert again == 2 and "holds a search started with other settings" in err
    assert "the search space" in err and "--overwrite" in err
    # Random search never reads a trial's weights back: none are written (a
    # checkpoint here means KerasTuner renamed the saver the hypermodel drops).
    assert not list(folder.glob("trial_*/*.h5"))
    # HParams logs for TensorBoard, one folder per trial.
    trials = sorted((folder / "tensorboard").iterdir())
    assert len(trials) == 3
    tags = EventAccumulator(str(trials[0] / "execution0")).Reload().Tags()["tensors"]
    assert "_hparams_/session_start_info" in tags


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    # An absurd learning rate makes the loss NaN: that trial fails, the next runs.
    result = search(
        _cfg(
            tmp_path,
            "tune.tuner=grid",
            "tune.space=seed003",
            "model.head=gap",
            "tune.fixed.dense_dropout=0.3",
            "tune.values.lr_head=[1000000.0, 0.001]",
        )
    )
    by_lr = {float(r["lr_head"]): r for r in result.rows}
    assert by_lr[1e6]["status"] == "FAILED"
    assert "NaN" in by_lr[1e6]["note"]
    assert by_lr[1e-3]["status"] == "COMPLETED"
    assert result.best["trial"] == by_lr[1e-3]["trial"]


def _env():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    return env


# Prepended to the first run's script: KerasTuner writes oracle.json in place
# (keras_tuner.src.utils.save_json); the write that starts trial 1, after trial 0
# finished, is cut halfway and the process kills itself with SIGKILL, as a kill -9
# landing mid-write would. Deterministic: no race with the child's output.
_DIE_WRITING_ORACLE_AT_TRIAL_1 = """
import json, os, signal
from keras_tuner.src import utils

_save_json = utils.save_json

def save_json(path, obj):
    ongoing = obj.get("ongoing_trials", {}).values()
    if str(path).endswith("oracle.json") and "1" in ongoing:
        text = json.dumps(obj)
        with open(path, "w") as fh:
            fh.write(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return _save_json(path, obj)

utils.save_json = save_json
"""


def _search_script(directory: Path, prelude: str = "") -> list[str]:
    """``python -c`` running the search command on two logical CPUs (a fresh
    process: the split must happen before TensorFlow starts)."""
    argv = [*SMOKE, "--tuner", "random", "--max-trials", "3"]
    argv += ["--strategy", "mirrored", "--directory", str(directory)]
    script = (
        "from keras_art.training.strategies import setup_logical_cpus\n"
        "setup_logical_cpus(2)\n"
        f"{prelude}"
        "from tuning.search import main\n"
        f"raise SystemExit(main({argv!r}))\n"
    )
    return [sys.executable, "-c", script]


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except ValueError:
        return False
    return True


def test_mirrored_search_killed_with_9_continues_without_repeating(tmp_path):
    # Every wait is bounded by a subprocess timeout: a child that hangs fails the
    # test with TimeoutExpired instead of blocking it forever.
    first = subprocess.run(
        _search_script(tmp_path, _DIE_WRITING_ORACLE_AT_TRIAL_1),
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert "2 replica(s)" in first.stdout, first.stdout
    ran_first = [ln for ln in first.stdout.splitlines() if ln.startswith("trial ")]
    assert len(ran_first) == 1 and ran_first[0].startswith("trial 0/"), ran_first
    folder = tmp_path / "artist-head"
    # The kill left what the snapshot is for: trial 1 started, oracle.json cut.
    assert not _parses(folder / "oracle.json")
    assert (folder / "trial_1").is_dir()
    before = {r["trial"]: r for r in _rows(folder)}
    assert list(before) == ["0"] and before["0"]["status"] == "COMPLETED"

    again = subprocess.run(
        _search_script(tmp_path),
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert _parses(folder / "oracle.json")
    rows = {r["trial"]: r for r in _rows(folder)}
    assert sorted(rows) == ["0", "1", "2"]
    assert {r["status"] for r in rows.values()} == {"COMPLETED"}
    assert rows["0"] == before["0"]  # not run again: same values, score, seconds
    # This session ran trials 1 and 2 only (1 again, as it never finished).
    ran = [ln for ln in again.stdout.splitlines() if ln.startswith("trial ")]
    assert [ln.split("/")[0] for ln in ran] == ["trial 1", "trial 2"], ran


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tuner", "nope"], "--tuner: invalid choice"),
        (["--set", "tune.tuner=nope"], "Unknown tune.tuner 'nope'"),
        (["--set", "tune.fixed={dense9: 1}"], "Unknown hyperparameter 'dense9'"),
        (
            [
                "--space",
                "seed003",
                "--head",
                "gap",
                "--set",
                "tune.fixed={dense_dropout: 0.3, lr_head: 0.001}",
            ],
            "search space is empty",
        ),  # fmt: skip
        (["--tuner", "grid"], "--tuner grid needs a step"),
        (["--space", "missing.json"], "neither a named space"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    code = main([*SMOKE, "--directory", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing started
