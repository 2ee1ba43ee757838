"""The train command end to end on the embedded sample (smoke preset, tiny)."""

import csv
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keras_art.config import build_config
from keras_art.errors import UserError
from keras_art.models.model_record import read_model_record
from keras_art.training.train import make_run_dir, train
from tests.training.resume_checks import (
    check_resumed_run,
    killed_run_state,
    wait_for_epoch_checkpoint,
)

RUN_FILES = {
    "config.json",
    "classes.json",
    "model.json",
    "splits.csv",
    "data_report.json",
    "history.csv",
    "checkpoints",
    "best.keras",
    "logs",
    "summary.json",
}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cached ImageNet weights and no network: the demo must fall back."""
    import keras_art.models.backbones as backbones

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(backbones, "network_available", lambda *a, **k: False)


def _smoke(tmp_path, *overrides):
    cfg, _ = build_config(
        "smoke", overrides=[f"workdir={tmp_path / 'runs'}", "run_name=r", *overrides]
    )
    return cfg.validate()


def test_demo_runs_offline_and_writes_a_complete_run_dir(tmp_path, offline, caplog):
    cfg = _smoke(tmp_path, "model.weights=imagenet")
    with caplog.at_level(logging.INFO, logger="keras_art"):
        result = train(cfg)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= RUN_FILES

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert "random init" in summary["weights_source"]
    assert summary["epochs_run"] == 2
    assert set(summary["metrics"]) == {"val", "test"}
    for split in summary["metrics"].values():
        assert 0.0 <= split["artist"]["top1"] <= 1.0
    assert summary["peak_rss_mb"] > 0 and summary["timings"]["wall_s"] > 0
    assert summary["versions"]["keras"].startswith("3.")

    with open(run / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["stage"])) for r in rows] == [1, 2]  # both stages ran
    assert {"loss", "val_macro_f1", "lr_head", "lr_backbone"} <= set(rows[0])

    classes = json.loads((run / "classes.json").read_text())
    assert len(classes["artist"]) == 8
    with open(run / "splits.csv", newline="") as fh:
        splits = {r["split"] for r in csv.DictReader(fh)}
    assert splits == {"train", "val", "test"}
    report = json.loads((run / "data_report.json").read_text())
    sampled = report["sampler"]["sampled_fraction"]
    assert len(sampled) == 8 and max(sampled.values()) < 2 * min(sampled.values())
    counts = report["sampler"]["train_counts"].values()
    assert max(counts) > 1.5 * min(counts)  # the split itself is imbalanced
    saved_cfg = json.loads((run / "config.json").read_text())
    assert saved_cfg["preset"] == "smoke" and saved_cfg["run_name"] == "r"

    assert "weights: random init" in caplog.text and "macroF1" in caplog.text
    record = read_model_record(run)
    assert record.class_names == classes and record.image_size == 32

    with pytest.raises(UserError, match="already holds a finished run"):
        make_run_dir(_smoke(tmp_path))


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_finishes_with_history_intact(tmp_path):
    """A run killed with SIGKILL after an epoch resumes from that epoch's checkpoint:
    it trains only the later epochs, keeps the killed run's history rows byte for
    byte, and continues its optimizer's step count."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    workdir = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "keras_art.train",
        "--task",
        "artist",
        "--preset",
        "smoke",
        "--workdir",
        str(workdir),
        "--run-name",
        "k",
        "--set",
        "train.epochs=3",
    ]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    run = workdir / "k"
    try:
        wait_for_epoch_checkpoint(run / "checkpoints", [proc], timeout=300)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert not (run / "summary.json").exists()  # an interrupted run never looks done
    done_epochs, lines_before, steps_per_epoch = killed_run_state(run)
    assert 1 <= done_epochs < 3, sorted((run / "checkpoints").iterdir())
    assert steps_per_epoch == 3  # smoke: train.steps_per_epoch=3

    done = subprocess.run(
        [sys.executable, "-m", "keras_art.train", "--resume", str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-2000:]
    check_resumed_run(run, out, done_epochs, lines_before, steps_per_epoch, epochs=3)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3
    assert Path(run / "best.keras").is_file()


@pytest.mark.parametrize(
    "tf_config,chief",
    [
        (
            {
                "cluster": {"worker": ["a:1", "b:2"]},
                "task": {"type": "worker", "index": 0},
            },
            True,
        ),
        (
            {
                "cluster": {"worker": ["a:1", "b:2"]},
                "task": {"type": "worker", "index": 1},
            },
            False,
        ),
        (
            {
                "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
        ),
        (
            {
                "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
                "task": {"type": "chief", "index": 0},
            },
            True,
        ),
    ],
)
def test_only_the_chief_owns_the_run_directory(monkeypatch, tf_config, chief):
    from keras_art.training.strategies import is_chief_process

    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief_process("multi_worker") is chief
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        is_chief_process("multi_worker")
    assert is_chief_process(build_config("smoke")[0].train.strategy)


def test_real_data_offline_stops_before_work_and_leaves_no_run_dir(
    tmp_path, offline, capsys
):
    from PIL import Image

    from keras_art.train import main

    for cls in ("Baroque", "Rococo"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(
                tmp_path / "data" / cls / f"{i}.png"
            )
    workdir = tmp_path / "runs"
    argv = [
        "--task",
        "style",
        "--data",
        str(tmp_path / "data"),
        "--workdir",
        str(workdir),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ImageNet weights for resnet50 are not available offline" in err
    assert "--weights none" in err
    assert main([*argv, "--weights", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5: no such file" in capsys.readouterr().err
    assert not workdir.exists() or not any(workdir.iterdir())


def test_resume_with_different_data_exits_2_and_names_it(tmp_path, capsys):
    from keras_art.data.catalog.prepare import prepare_data, write_data_files
    from keras_art.train import main

    cfg = _smoke(tmp_path, "model.weights=none")
    run = make_run_dir(cfg)
    (run / "config.json").write_text(cfg.to_json())
    prepared = prepare_data(cfg)
    prepared.class_names["artist"][0] = "Someone_Else"  # as if a class was renamed
    write_data_files(prepared, run)
    assert main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "artist classes" in err and "Someone_Else" in err
    assert not (run / "checkpoints").exists()  # nothing trained on shifted labels
