"""Distributed search: the chief's bookkeeping on a real KerasTuner oracle (lost
workers, retries, when to stop), the shared feature cache, the set-up's errors, and
a chief with two workers on 127.0.0.1, one killed with -9 mid-trial."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine.trial import Trial, TrialStatus

from keras_art.config import build_config
from keras_art.errors import ParameterError, UserError
from tuning import shared_features
from tuning.chief import ChiefOracle, serve
from tuning.cluster import Cluster, cluster_env, resolve_cluster
from tuning.search import main
from tuning.searcher import (
    check_joins_search,
    plan_search,
    search_record,
    write_search_record,
)

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the chief
class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _chief(tmp_path, *, max_trials=3, retries=1, failures=3):
    """A ChiefOracle around a real RandomSearch oracle (one float to search), a fake
    clock, and the list of trial ids it reported as ended."""

    def build(hp):
        hp.Float("x", 0.0, 1.0)

    tuner = keras_tuner.RandomSearch(
        hypermodel=build,
        objective=keras_tuner.Objective("val_f1", "max"),
        max_trials=max_trials,
        max_retries_per_trial=retries,
        max_consecutive_failed_trials=failures,
        directory=str(tmp_path),
        project_name="p",
        seed=1,
    )
    tuner.oracle.verbose = 0
    clock, ended = _Clock(), []
    chief = ChiefOracle(
        tuner.oracle,
        project=tmp_path / "p",
        on_end=ended.append,
        worker_timeout=5,
        clock=clock,
    )
    return chief, tuner.oracle, clock, ended


def _complete(chief, trial, score=0.5):
    """What a worker sends at the end of a trial that went well (its own copy of
    the trial, as it comes over gRPC)."""
    chief.update_trial(trial.trial_id, {"val_f1": score})
    sent = Trial.from_proto(trial.to_proto())
    sent.status = TrialStatus.COMPLETED
    chief.end_trial(sent)


def test_a_silent_workers_trial_is_retried_by_another_worker(tmp_path):
    chief, oracle, clock, ended = _chief(tmp_path)
    first = chief.create_trial("tuner1")
    lost = chief.create_trial("tuner2")
    assert (first.status, lost.status) == ("RUNNING", "RUNNING")
    # A worker restarted with its old id gets its own trial back (KerasTuner).
    assert chief.create_trial("tuner2").trial_id == lost.trial_id
    clock.now = 4
    chief.beat("tuner1")
    clock.now = 5.5  # tuner2: 5.5 s silent (> 5); tuner1: 1.5 s
    assert chief.take_back_silent() == ["tuner2"]
    assert ended == [lost.trial_id]
    assert oracle.trials[lost.trial_id].status == TrialStatus.INVALID  # queued
    assert "worker tuner2 went silent for 6 s" in oracle.trials[lost.trial_id].message
    _complete(chief, first)
    # The next free worker gets the lost trial, not a new one.
    again = chief.create_trial("tuner1")
    assert again.trial_id == lost.trial_id and again.status == "RUNNING"
    _complete(chief, again)
    last = chief.create_trial("tuner1")
    _complete(chief, last)
    assert not chief.finished()  # tuner1 has not been told to stop yet
    assert chief.create_trial("tuner1").status == TrialStatus.STOPPED
    assert chief.finished()
    statuses = {t.trial_id: t.status for t in oracle.trials.values()}
    assert len(statuses) == 3 and set(statuses.values()) == {"COMPLETED"}
    assert ended == [lost.trial_id, first.trial_id, lost.trial_id, last.trial_id]


def test_a_worker_waits_while_a_running_trial_may_come_back(tmp_path):
    chief, oracle, clock, _ = _chief(tmp_path, max_trials=2)
    first = chief.create_trial("tuner1")
    lost = chief.create_trial("tuner2")
    _complete(chief, first)
    # Every trial is handed out, but tuner2's may come back: tuner1 waits.
    assert chief.create_trial("tuner1").status == TrialStatus.IDLE
    assert not chief.finished()
    clock.now = 5.5
    chief.beat("tuner1")
    assert chief.take_back_silent() == ["tuner2"]
    again = chief.create_trial("tuner1")
    assert again.trial_id == lost.trial_id
    _complete(chief, again)
    assert chief.create_trial("tuner1").status == TrialStatus.STOPPED
    assert chief.finished()


def test_without_retries_a_lost_trial_is_recorded_failed_and_a_late_end_ignored(
    tmp_path,
):
    chief, oracle, clock, ended = _chief(tmp_path, max_trials=1, retries=0)
    trial = chief.create_trial("tuner1")
    clock.now = 6
    assert chief.take_back_silent() == ["tuner1"]
    assert oracle.trials[trial.trial_id].status == TrialStatus.FAILED
    saved = json.loads(
        (tmp_path / "p" / f"trial_{trial.trial_id}" / "trial.json").read_text()
    )
    assert saved["status"] == "FAILED" and "went silent" in saved["message"]
    # The worker was only slow: its result comes in after all and is ignored.
    _complete(chief, trial)
    assert oracle.trials[trial.trial_id].status == TrialStatus.FAILED
    assert ended == [trial.trial_id]
    assert chief.finished() is False  # nobody was told to stop yet...
    assert chief.create_trial("tuner1").status == TrialStatus.STOPPED
    assert chief.finished()


def test_the_chief_waits_for_a_worker_still_preparing_its_data(tmp_path):
    chief, _, clock, _ = _chief(tmp_path, max_trials=1)
    chief.beat("tuner2")  # connected, preparing data, no trial yet
    _complete(chief, chief.create_trial("tuner1"))
    assert chief.create_trial("tuner1").status == TrialStatus.STOPPED
    assert not chief.finished()  # tuner2 would find no chief
    assert chief.create_trial("tuner2").status == TrialStatus.STOPPED
    assert chief.finished()
    # A worker that died before asking for a trial is not waited for.
    chief, _, clock, _ = _chief(tmp_path / "b", max_trials=1)
    chief.beat("tuner2")
    _complete(chief, chief.create_trial("tuner1"))
    chief.create_trial("tuner1")
    clock.now = 6
    chief.beat("tuner1")
    assert chief.finished()


def test_too_many_failures_in_a_row_stop_the_search(tmp_path):
    chief, oracle, _, ended = _chief(tmp_path, failures=1)
    trial = chief.create_trial("tuner1")
    other = chief.create_trial("tuner2")
    sent = Trial.from_proto(trial.to_proto())
    sent.status = TrialStatus.FAILED
    chief.end_trial(sent)  # KerasTuner's oracle raises RuntimeError here
    assert "consecutive failures" in chief.failure
    assert ended == [trial.trial_id]
    assert chief.create_trial("tuner1").status == TrialStatus.STOPPED
    assert not chief.finished()  # tuner2's trial still runs
    _complete(chief, other)
    assert chief.create_trial("tuner2").status == TrialStatus.STOPPED
    assert chief.finished()


def test_serve_gives_up_without_workers_and_refuses_a_busy_port(tmp_path):
    chief, *_ = _chief(tmp_path)
    chief.started -= 10  # the fake clock: 10 s already passed without a worker
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(UserError, match="No worker has been in touch"):
        serve(chief, f"127.0.0.1:{port}", idle_timeout=5)
    assert time.monotonic() - start < 10
    # Another gRPC server (another chief) on the port: gRPC's default SO_REUSEPORT
    # would let both listen there.
    other = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    address = f"127.0.0.1:{port}"
    assert other.add_insecure_port(address) == port
    other.start()
    try:
        with pytest.raises(ParameterError, match="cannot listen there"):
            serve(chief, address, idle_timeout=5)
    finally:
        other.stop(grace=None)


def test_kerastuner_still_has_the_private_names_the_search_uses():
    # Fails loudly if KerasTuner moves them (tuning.chief, tuning.worker,
    # tuning.cluster reach into keras_tuner.src for lack of a public API).
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief, oracle_client
    from keras_tuner.src.engine.conditions import Parent

    assert hasattr(protos.get_service_grpc(), "add_OracleServicer_to_server")
    assert hasattr(oracle_chief, "OracleServicer")
    assert isinstance(oracle_client.TIMEOUT, (int, float))
    assert callable(Parent.to_proto)


# ----------------------------------------------------------- the set-up's words
def test_cluster_from_flags_or_kerastuner_variables():
    assert resolve_cluster(None, None, environ={}) is None
    chief = resolve_cluster("127.0.0.1:8000", "chief", environ={})
    assert chief == Cluster("127.0.0.1", 8000, "chief") and chief.is_chief
    env = {
        "KERASTUNER_ORACLE_IP": "10.0.0.1",
        "KERASTUNER_ORACLE_PORT": "9000",
        "KERASTUNER_TUNER_ID": "tuner3",
    }
    worker = resolve_cluster(None, None, environ=env)
    assert worker.address == "10.0.0.1:9000" and not worker.is_chief
    with pytest.raises(UserError, match="KERASTUNER_TUNER_ID not set"):
        resolve_cluster(None, None, environ={**env, "KERASTUNER_TUNER_ID": ""})
    with cluster_env(worker):
        assert os.environ["KERASTUNER_TUNER_ID"] == "tuner3"
    assert (
        "KERASTUNER_TUNER_ID" not in os.environ
        or os.environ.get("KERASTUNER_TUNER_ID") != "tuner3"
    )


SMOKE = ["--preset", "smoke", "--task", "artist", "--weights", "none", "--epochs", "1"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--chief", "nohost", "--tuner-id", "chief"], "--chief 'nohost' is not HOST"),
        (["--chief", "127.0.0.1:8000"], "give --tuner-id chief|tunerN as well"),
        (["--tuner-id", "tuner1"], "give --chief HOST:PORT as well"),
        (["--chief", "127.0.0.1:8000", "--tuner-id", "chief2"], "--tuner-id 'chief2'"),
        (
            ["--chief", "127.0.0.1:8000", "--tuner-id", "tuner1", "--overwrite"],
            "--overwrite and --retrain-best are the chief's",
        ),
        (["--set", "tune.worker_timeout=0"], "tune.worker_timeout 0.0: give a number"),
        (["--set", "train.strategy=multi_worker"], "search (--chief and --tuner-id)"),
    ],
)  # fmt: skip
def test_bad_cluster_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    code = main([*SMOKE, "--directory", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


def test_a_worker_without_a_chief_says_so_within_its_timeout(tmp_path, capsys):
    flags = ["--chief", f"127.0.0.1:{_free_port()}", "--tuner-id", "tuner1"]
    start = time.monotonic()
    code = main([*SMOKE, "--directory", str(tmp_path), *flags,
                 "--set", "tune.idle_timeout=2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "No chief answers at 127.0.0.1:" in err, err
    assert "(--chief or KERASTUNER_ORACLE_IP/PORT)" in err
    assert time.monotonic() - start < 30


def test_a_worker_joins_only_the_chiefs_search_with_its_settings(tmp_path):
    cfg, _ = build_config("smoke", overrides=["task=artist", "model.weights=none"])
    base, space, _ = plan_search(cfg.validate())
    with pytest.raises(ParameterError, match="holds no search.json from the chief"):
        check_joins_search(tmp_path, base, space)
    write_search_record(tmp_path, search_record(base, space))
    check_joins_search(tmp_path, base, space)  # the same settings: fine
    base.train.lr_head *= 2
    base.tune.worker_timeout = 9.0  # how it copes may differ, not what it searches
    with pytest.raises(ParameterError, match=r"differ .* \(train.lr_head\)"):
        check_joins_search(tmp_path, base, space)


# ------------------------------------------------------- the shared feature cache
def test_the_feature_cache_is_computed_once_and_read_by_the_others(tmp_path):
    calls, release = [], threading.Event()

    def compute():
        calls.append(threading.current_thread().name)
        release.wait(timeout=30)  # the others arrive while this one computes
        return shared_features.FeatureArrays(
            train=(np.ones((4, 2, 1, 1, 3), "float16"), {"artist": np.arange(4)},
                   {"artist": np.ones(4, "float32")}),
            val=(np.zeros((2, 1, 1, 3), "float16"), {"artist": np.arange(2)},
                 {"artist": np.ones(2, "float32")}),
            backbone_weights=[np.full((3, 3), 7.0), np.zeros(3)],
        )  # fmt: skip

    got = {}

    def worker(name):
        got[name] = shared_features.shared_features(tmp_path, compute)

    threads = [threading.Thread(target=worker, args=(n,), name=n) for n in "abc"]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert len(calls) == 1  # one computes, the others wait on the lock
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1 and set(got) == {"a", "b", "c"}
    for arrays in got.values():
        assert arrays.train[0].shape == (4, 2, 1, 1, 3)
        assert arrays.train[0].dtype == np.float16
        assert list(arrays.val[1]["artist"]) == [0, 1]
        assert np.array_equal(arrays.backbone_weights[0], np.full((3, 3), 7.0))
    assert sorted(p.name for p in (tmp_path / "feature_cache").iterdir()) == [
        "backbone.npz", "train.npz", "val.npz"
    ]  # fmt: skip


def test_a_worker_killed_while_computing_leaves_no_cache_behind(tmp_path):
    def dies():
        raise KeyboardInterrupt  # as good as a kill for the folder it was writing

    with pytest.raises(KeyboardInterrupt):
        shared_features.shared_features(tmp_path, dies)
    assert not (tmp_path / "feature_cache").exists()


# ------------------------------------------- a chief and two workers, one killed
# Run before the search in each process: records every file it opens for writing
# or renames into the search folder, so the test knows who wrote what (keras_art's
# atomic writes; KerasTuner writes its own state through tf.io.gfile, unseen here).
AUDIT = """
import os, sys
_root, _log = os.environ["AUDIT_ROOT"], open(os.environ["AUDIT_LOG"], "a", buffering=1)
_WRITE = os.O_WRONLY | os.O_RDWR

def _audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)) and args[2] & _WRITE:
        path = os.fsdecode(args[0])
    elif event == "os.rename":
        path = os.fsdecode(args[1])
    else:
        return
    if path.startswith(_root):
        _log.write(os.path.relpath(path, _root).split(os.sep)[0] + "\\n")

sys.addaudithook(_audit)
"""
GRID = ["--tuner", "grid", "--space", "seed003", "--head", "gap",
        "--set", "tune.fixed.dense_dropout=0.3",
        "--set", "tune.values.lr_head=[0.001, 0.002, 0.003]"]  # fmt: skip
CHIEF_ONLY = {"results.csv", "summary.md", "best_config.json", "search.json",
              ".state_snapshot"}  # fmt: skip
DONE = re.compile(r"^tuner\d: trial (\d+)/\d+: .* -> val_f1 ", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tuner_id: str, port: int, tmp_path: Path, folder: Path):
    argv = [*SMOKE, *GRID, "--directory", str(tmp_path),
            "--chief", f"127.0.0.1:{port}", "--tuner-id", tuner_id,
            "--set", "tune.worker_timeout=4",
            "--set", "tune.idle_timeout=120"]  # fmt: skip
    script = (
        f"{AUDIT}\nfrom tuning.search import main\nraise SystemExit(main({argv!r}))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONUNBUFFERED": "1", "AUDIT_ROOT": str(folder),
           "AUDIT_LOG": str(tmp_path / f"{tuner_id}.writes")}  # fmt: skip
    env.pop("TF_CONFIG", None)
    log = open(tmp_path / f"{tuner_id}.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    log.close()
    return proc


def _running_trial(folder: Path, procs: dict, timeout: float) -> tuple[str, str]:
    """(worker, trial id) of the first trial the chief's oracle.json shows
    running; fails if a process ends first or nothing runs within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        assert not ended, f"ended before any trial ran: {ended}"
        ongoing = _ongoing(folder, tries=1)
        if ongoing:
            return next(iter(ongoing.items()))
        time.sleep(0.2)
    pytest.fail(f"no trial started within {timeout} s")


def _ongoing(folder: Path, tries: int = 25) -> dict[str, str]:
    """The chief's running trials by worker, from oracle.json ({} when it is not
    there yet); KerasTuner writes it in place, so a read may catch it mid-write."""
    for _ in range(tries):
        try:
            return json.loads((folder / "oracle.json").read_text())["ongoing_trials"]
        except FileNotFoundError:
            return {}
        except ValueError:
            time.sleep(0.2)
    return {}


def _written(tmp_path: Path, tuner_id: str) -> set[str]:
    path = tmp_path / f"{tuner_id}.writes"
    return set(path.read_text().split()) if path.exists() else set()


@pytest.mark.slow
def test_chief_and_two_workers_finish_the_grid_after_a_worker_is_killed(tmp_path):
    folder = tmp_path / "artist-head-seed003"
    port = _free_port()
    procs = {}
    try:
        procs["chief"] = _start("chief", port, tmp_path, folder)
        for worker in ("tuner1", "tuner2"):
            procs[worker] = _start(worker, port, tmp_path, folder)
        victim, lost = _running_trial(folder, procs, timeout=300)
        procs[victim].send_signal(signal.SIGKILL)
        assert procs[victim].wait(timeout=30) == -signal.SIGKILL
        # Killed mid-trial: the chief still counts it as running (for 4 s).
        assert _ongoing(folder).get(victim) == lost, "the trial ended before the kill"
        for name in ("chief", *(w for w in ("tuner1", "tuner2") if w != victim)):
            assert procs[name].wait(timeout=300) == 0, (
                tmp_path / f"{name}.log"
            ).read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in procs}
    survivor = ({"tuner1", "tuner2"} - {victim}).pop()

    # As many trials as the same search on its own: the grid's 3 combinations.
    cfg, _ = build_config("smoke", overrides=[
        "task=artist", "model.weights=none", "model.head=gap", "tune.tuner=grid",
        "tune.space=seed003", "tune.fixed.dense_dropout=0.3",
        "tune.values.lr_head=[0.001, 0.002, 0.003]"])  # fmt: skip
    expected = plan_search(cfg.validate())[2]["total"]
    with open(folder / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert expected == 3 and len(rows) == expected
    assert {r["status"] for r in rows} == {"COMPLETED"}
    assert sorted(float(r["lr_head"]) for r in rows) == [0.001, 0.002, 0.003]
    # Each trial ran to the end exactly once; the lost one on the survivor.
    done = {w: DONE.findall(logs[w]) for w in ("tuner1", "tuner2")}
    assert sorted(done["tuner1"] + done["tuner2"]) == sorted(r["trial"] for r in rows)
    assert lost in done[survivor] and lost not in done[victim]
    assert f"worker {victim} went silent" in logs["chief"]
    assert f"trial {lost} goes to the next free worker" in logs["chief"]
    # One worker computed the feature cache, the other read it.
    writes = sum(logs[w].count("feature cache written") for w in ("tuner1", "tuner2"))
    reads = sum(
        logs[w].count("reading the shared feature cache") for w in ("tuner1", "tuner2")
    )
    assert (writes, reads) == (1, 1)
    # Only the chief wrote the search's shared files.
    assert _written(tmp_path, "chief") >= CHIEF_ONLY
    for worker in ("tuner1", "tuner2"):
        assert not _written(tmp_path, worker) & CHIEF_ONLY, worker
    summary = (folder / "summary.md").read_text()
    assert "3 trial(s) completed, 0 failed" in summary
