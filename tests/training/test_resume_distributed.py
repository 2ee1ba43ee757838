"""Resume and distribution tests: each run is a fresh process (run_tiny.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_art.errors import UserError
from keras_art.training.strategies import validate_tf_config
from tests.training import tiny

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def _cmd(tmp, name, *extra):
    return [
        sys.executable,
        "-m",
        "tests.training.run_tiny",
        "--dir",
        str(tmp / name),
        "--out",
        str(tmp / f"{name}.npz"),
        *extra,
    ]


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(tmp, name, *extra, env=None):
    proc = subprocess.run(
        _cmd(tmp, name, *extra),
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _load(tmp / f"{name}.npz")


def _load(path):
    data = np.load(path)
    weights = [data[f"arr_{i}"] for i in range(len(data.files) - 3)]
    return {
        "weights": weights,
        "history": json.loads(str(data["history"])),
        "epochs": json.loads(str(data["epochs"])),
        "replicas": int(data["replicas"]),
    }


def _same(a, b, atol=0.0):
    assert len(a["weights"]) == len(b["weights"])
    for x, y in zip(a["weights"], b["weights"], strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)
    keys = ("loss", "val_loss", "val_macro_f1", "stage", "lr_head", "lr_backbone")
    for ra, rb in zip(a["history"], b["history"], strict=True):
        for k in keys:
            assert ra[k] == pytest.approx(rb[k], abs=max(atol, 1e-12)), k


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    return _run(tmp, "full", "--epochs", "4")


def test_resume_matches_uninterrupted_run(tmp_path, uninterrupted):
    _run(tmp_path, "part", "--epochs", "2")
    resumed = _run(tmp_path, "part", "--epochs", "4", "--resume")
    assert resumed["epochs"] == [0, 1, 2, 3]
    assert [r["stage"] for r in resumed["history"]] == [1, 2, 2, 2]
    _same(uninterrupted, resumed)
    rows = (tmp_path / "part" / "history.csv").read_text().splitlines()
    assert len(rows) == 5  # header + 4 epochs, the first two restored


def test_sigkill_mid_epoch_resumes_from_last_completed_epoch(tmp_path, uninterrupted):
    proc = subprocess.Popen(
        _cmd(tmp_path, "killed", "--epochs", "4", "--slow-epoch", "2"),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.time() + TIMEOUT
        for line in proc.stdout:
            if line.startswith("slow step 1") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    ckpt = tmp_path / "killed" / "checkpoints"
    assert sorted(p.name for p in ckpt.glob("epoch_*")) == ["epoch_0001", "epoch_0002"]
    # A save that died half-way leaves only a hidden temp folder: ignored.
    junk = ckpt / ".tmp-epoch_0003-crashed"
    junk.mkdir()
    (junk / "model.npz").write_bytes(b"truncated")
    resumed = _run(tmp_path, "killed", "--epochs", "4", "--resume")
    assert resumed["epochs"] == [0, 1, 2, 3]
    _same(uninterrupted, resumed)
    assert not junk.exists()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_mirrored_two_logical_cpus_matches_single_device(tmp_path, optimizer):
    """Two replicas on half batches train exactly like one device on whole batches.

    With ``sgd`` the update is proportional to the gradient, so a loss averaged
    over each replica's half batch instead of the global batch (gradients x2)
    fails; Adam's step hides that scale, ``adamw`` checks the real optimizer.
    """
    common = ("--epochs", "2", "--dropout", "0", "--optimizer", optimizer)
    single = _run(tmp_path, "single", *common)
    mirrored = _run(
        tmp_path, "mirrored", *common, "--strategy", "mirrored", "--logical-cpus", "2"
    )
    assert mirrored["replicas"] == 2
    assert [r["stage"] for r in mirrored["history"]] == [1, 2]
    _same(single, mirrored, atol=1e-5)


def test_group_adamw_under_mirrored_applies_the_summed_gradients_once():
    """Two replicas, each with its own gradients: the update equals one
    single-device step on their sum (clipped), not on twice the sum."""
    import keras
    import tensorflow as tf

    from keras_art.training.optimizers import GroupAdamW
    from tests.training.run_mirrored_apply import GRADS

    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.run_mirrored_apply"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    mirrored = json.loads(proc.stdout.strip().splitlines()[-1])

    head = keras.Variable(np.ones(3, "float32"))
    bb = keras.Variable(np.ones(3, "float32"))
    opt = GroupAdamW({"head": 0.1, "backbone": 0.01}, global_clipnorm=1.0)
    opt.build({"head": [head], "backbone": [bb]})
    for per_replica in GRADS:
        summed = np.sum(np.asarray(per_replica, "float32"), axis=0)
        opt.apply([tf.constant(g) for g in summed], [head, bb])
    assert mirrored["iterations"] == 2
    for group, o in opt.optimizers.items():
        (m,) = [v for v in o.variables if "momentum" in v.path]
        np.testing.assert_allclose(mirrored["moments"][group], m.numpy(), rtol=1e-5)
    np.testing.assert_allclose(mirrored["head"], head.numpy(), rtol=1e-5)
    np.testing.assert_allclose(mirrored["backbone"], bb.numpy(), rtol=1e-5)


@pytest.mark.slow
def test_multi_worker_two_processes_agree(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in tiny.free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": i},
        }
        procs.append(
            subprocess.Popen(
                _cmd(
                    tmp_path,
                    f"w{i}",
                    "--epochs",
                    "2",
                    "--dropout",
                    "0",
                    "--strategy",
                    "multi_worker",
                ),
                cwd=ROOT,
                env=_env(TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        errs = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    w0, w1 = (_load(tmp_path / f"w{i}.npz") for i in range(2))
    assert w0["replicas"] == 2
    assert [r["stage"] for r in w0["history"]] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in w0["history"])
    _same(w0, w1, atol=1e-6)
    assert (tmp_path / "w0" / "checkpoints" / "epoch_0002").is_dir()
    assert not (tmp_path / "w1" / "checkpoints").exists()  # only the chief writes


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "{not json",
        '{"cluster": {}}',
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
    ],
)
def test_tf_config_errors_are_user_errors(raw):
    with pytest.raises(UserError, match="TF_CONFIG"):
        validate_tf_config(raw)
