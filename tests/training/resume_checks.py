"""Checks shared by the kill-and-resume tests of the train command (one process
and two workers): a resume must continue after its checkpoint, not retrain."""

import json
import re
import time


def wait_for_epoch_checkpoint(ckpt, procs, timeout):
    """Poll (bounded) until ``ckpt`` holds a complete ``epoch_NNNN`` checkpoint; the
    folder it found. Fails when ``timeout`` s pass or a process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        if ckpt.is_dir():
            found = [
                p
                for p in ckpt.iterdir()
                if p.name.startswith("epoch_") and (p / "state.json").is_file()
            ]
            if found:
                return max(found)
        time.sleep(0.5)
    raise AssertionError(
        f"no epoch checkpoint in {ckpt} within {timeout} s "
        f"(exit codes {[p.poll() for p in procs]})"
    )


def killed_run_state(run):
    """After the kill: (epochs its latest checkpoint completed, history.csv's header
    and rows of those epochs, optimizer steps per epoch from that checkpoint)."""
    latest = max(p for p in (run / "checkpoints").iterdir() if p.name.startswith("ep"))
    state = json.loads((latest / "state.json").read_text())
    done = int(latest.name.split("_")[1])
    assert state["epoch"] == done
    lines = (run / "history.csv").read_text().splitlines()
    # history.csv is rewritten before each checkpoint: it holds every epoch up to
    # the checkpoint (and maybe the next one, if the kill came between the two).
    assert len(lines) - 1 >= done, lines
    return done, lines[: done + 1], state["iterations"] // done


def trained_epochs(output):
    """The epochs a run trained, from its 'Epoch N/M (stage S)' progress lines."""
    return [int(n) for n in re.findall(r"Epoch (\d+)/\d+ \(stage", output)]


def check_resumed_run(run, output, done, lines_before, steps_per_epoch, epochs):
    """The resume trained only the epochs after checkpoint ``done`` (its progress
    lines); history.csv's header and rows 1..done are the killed run's, byte for
    byte (retraining them would change at least epoch_time_s), followed by one row
    per later epoch; the optimizer's step count went on from the checkpoint's (a
    fresh optimizer would restart it)."""
    trained = trained_epochs(output)
    assert trained == list(range(done + 1, epochs + 1)), (
        f"killed after epoch {done}, the resume trained epochs {trained}"
    )
    lines = (run / "history.csv").read_text().splitlines()
    assert lines[: len(lines_before)] == lines_before, "earlier history rows changed"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(
        range(1, epochs + 1)
    )  # 1-based, as the progress bar counts; every epoch once
    last = run / "checkpoints" / f"epoch_{epochs:04d}" / "state.json"
    iterations = json.loads(last.read_text())["iterations"]
    assert iterations == epochs * steps_per_epoch, "the optimizer's steps restarted"
