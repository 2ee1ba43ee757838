"""The README's multi-worker command, run as written: two processes on 127.0.0.1.

`python -m keras_art.train ... --strategy multi_worker --run-name NAME` with TF_CONFIG,
one process per worker, then both killed after an epoch and restarted with --resume.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.training import tiny

pytestmark = pytest.mark.slow


def _start_workers(workdir, *extra):
    ports = tiny.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(tf_config),
        }
        argv = [sys.executable, "-m", "keras_art.train", *extra]
        procs.append(
            subprocess.Popen(
                argv,
                env=env,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return procs


def _result_table(output):
    """The final metrics table each worker prints (split, task, numbers)."""
    return re.findall(r"^(val|test)\s+artist\s+([\d.\s]+)$", output, re.M)


def test_two_workers_train_then_kill_and_resume_through_the_cli(tmp_path):
    run = tmp_path / "runs" / "mw"
    first = [
        "--task", "artist", "--preset", "smoke", "--weights", "none",
        "--strategy", "multi_worker", "--run-name", "mw",
        "--set", "train.epochs=3",
    ]  # fmt: skip
    procs = _start_workers(tmp_path, *first)
    ckpt = run / "checkpoints"
    deadline = time.time() + 400
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if ckpt.is_dir() and any(p.name.startswith("epoch_") for p in ckpt.iterdir()):
            break
        time.sleep(0.5)
    assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
    for p in procs:  # both workers die mid-run
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not (run / "summary.json").exists()

    procs = _start_workers(tmp_path, "--resume", str(run))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3
    with open(run / "history.csv", newline="") as fh:
        epochs = [int(float(r["epoch"])) for r in csv.DictReader(fh)]
    assert epochs == [1, 2, 3]  # every epoch recorded once, none replayed twice
    # Both workers resumed from the same checkpoint and evaluated the same weights.
    tables = [_result_table(out) for out in outputs]
    assert tables[0] and tables[0] == tables[1]
