"""The README's multi-worker command, run as written: two processes on 127.0.0.1.

`python -m keras_art.train ... --strategy multi_worker --run-name NAME` with TF_CONFIG,
one process per worker, then both killed after an epoch and restarted with --resume.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.training import tiny
from tests.training.resume_checks import (
    check_resumed_run,
    killed_run_state,
    wait_for_epoch_checkpoint,
)

pytestmark = pytest.mark.slow


def _start_workers(workdir, logs, *extra):
    """Two workers of one cluster; each writes its output to ``logs/<index>.log``."""
    ports = tiny.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    logs.mkdir(exist_ok=True)
    procs = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(tf_config),
        }
        argv = [sys.executable, "-m", "keras_art.train", *extra]
        with open(logs / f"{index}.log", "w") as log:  # a file never fills up
            procs.append(
                subprocess.Popen(
                    argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return procs


def _wait_all(procs, timeout):
    """Wait (bounded) for every process; kill any still running on the way out."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=60)


def _result_table(output):
    """The final metrics table each worker prints (split, task, numbers)."""
    return re.findall(r"^(val|test)\s+artist\s+([\d.\s]+)$", output, re.M)


def test_two_workers_train_then_kill_and_resume_through_the_cli(tmp_path):
    run = tmp_path / "runs" / "mw"
    first = [
        "--task", "artist", "--preset", "smoke", "--weights", "none",
        "--strategy", "multi_worker", "--run-name", "mw", "--no-report",
        "--set", "train.epochs=3",
    ]  # fmt: skip
    logs = tmp_path / "first"
    procs = _start_workers(tmp_path, logs, *first)
    try:
        wait_for_epoch_checkpoint(run / "checkpoints", procs, timeout=400)
        alive = [p.poll() is None for p in procs]
        assert all(alive), [(logs / f"{i}.log").read_text()[-2000:] for i in (0, 1)]
    finally:
        for p in procs:  # both workers die mid-run
            p.send_signal(signal.SIGKILL)
        _wait_all(procs, timeout=60)
    assert not (run / "summary.json").exists()
    done_epochs, lines_before, steps_per_epoch = killed_run_state(run)
    assert 1 <= done_epochs < 3, sorted((run / "checkpoints").iterdir())
    assert steps_per_epoch == 3  # smoke: train.steps_per_epoch=3

    logs = tmp_path / "resumed"
    procs = _start_workers(tmp_path, logs, "--resume", str(run))
    _wait_all(procs, timeout=600)
    outputs = [(logs / f"{i}.log").read_text() for i in (0, 1)]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3
    # The chief (worker 0) writes the checkpoints and history.csv and alone prints
    # the epochs' progress lines.
    check_resumed_run(run, outputs[0], done_epochs, lines_before, steps_per_epoch, 3)
    # Both workers resumed from the same checkpoint and evaluated the same weights.
    tables = [_result_table(out) for out in outputs]
    assert tables[0] and tables[0] == tables[1]
