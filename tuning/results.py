"""What a search leaves in its directory, rebuilt from KerasTuner's own trial records
after every trial (so a resumed search rewrites them whole):

- ``results.csv``: one row per trial: id, status, each hyperparameter, best val
  macro-F1 (``val_f1``), top-1/top-5 and loss at that epoch, epochs, seconds, and why
  a failed trial failed;
- ``summary.md``: the search settings and the top trials (seed 002's table);
- ``best_config.json``: the base config with the best trial's values, which
  ``python -m keras_art.train --config`` takes as is.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from keras_art.atomic_files import atomic_write_json, atomic_write_text
from keras_art.config import Config
from keras_art.markdown import markdown_table
from tuning.hypermodel import OBJECTIVE
from tuning.space import apply_values, tidy

METRIC_COLUMNS = (
    OBJECTIVE,
    "val_top1",
    "val_top5",
    "val_loss",
    "best_epoch",
    "epochs",
    "seconds",
)
SUMMARY_ROWS = 10


def trial_rows(oracle, names: list[str]) -> list[dict[str, Any]]:
    """One dict per trial, in trial order (see module doc for the columns)."""
    return [trial_row(oracle.trials[t], names) for t in sorted(oracle.trials)]


def trial_row(trial, names: list[str]) -> dict[str, Any]:
    """One trial's row of ``results.csv``."""
    hp = trial.hyperparameters
    row: dict[str, Any] = {"trial": trial.trial_id, "status": str(trial.status)}
    for name in names:
        active = name in hp.values and hp.is_active(name)
        row[name] = tidy(hp.get(name)) if active else ""
    for metric in METRIC_COLUMNS:
        row[metric] = _metric(trial, metric)
    row["note"] = _last_line(trial.message) if trial.message else ""
    return row


def best_config(base: Config, row: dict[str, Any], names: list[str]) -> Config:
    """``base`` with the best trial's values: a full run's config (the trial-only
    settings, like a frozen backbone for ``--stage head``, are not in it)."""
    values = {n: row[n] for n in names if row[n] != ""}
    cfg = apply_values(base, values)
    cfg.run_name = ""
    return cfg.validate()


def write_results(
    folder: Path,
    rows: list[dict],
    names: list[str],
    settings: dict,
    base: Config,
    best: dict[str, Any] | None,
) -> None:
    """Write results.csv, summary.md and, once a trial completed, best_config.json
    from ``best`` (the best trial's row, as KerasTuner's oracle ranks them)."""
    columns = ["trial", "status", *names, *METRIC_COLUMNS, "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "results.csv", buf.getvalue())
    atomic_write_text(
        folder / "summary.md", summary_markdown(rows, names, settings, best)
    )
    if best is not None:
        atomic_write_json(
            folder / "best_config.json", best_config(base, best, names).to_dict()
        )


def summary_markdown(rows, names, settings: dict, best) -> str:
    done = [r for r in rows if r["status"] == "COMPLETED" and r[OBJECTIVE] != ""]
    failed = [r for r in rows if r["status"] in ("FAILED", "INVALID")]
    lines = [
        f"# Search {settings['project']}",
        "",
        f"{settings['tuner']} tuner, stage {settings['stage']}, space "
        f"{settings['space']}, task {settings['task']}: {len(done)} trial(s) "
        f"completed, {len(failed)} failed. Objective: best validation macro-F1 of a "
        f"trial (maximised).",
        "",
    ]
    top = sorted(done, key=lambda r: r[OBJECTIVE], reverse=True)[:SUMMARY_ROWS]
    header = [
        "rank",
        "trial",
        *names,
        "val top-1",
        "val top-5",
        "val macro-F1",
        "epochs",
        "s",
    ]
    cells = [
        [rank, r["trial"], *(_fmt(r[n]) for n in names)]
        + [_fmt(r["val_top1"]), _fmt(r["val_top5"]), _fmt(r[OBJECTIVE])]
        + [_fmt(r["epochs"]), _fmt(r["seconds"], "{:.0f}")]
        for rank, r in enumerate(top, 1)
    ]
    # Every column left-aligned, as the table always was.
    lines.append(markdown_table(header, cells, name_columns=len(header)))
    if failed:
        lines += ["", "Failed trials:", ""]
        lines += [f"- trial {r['trial']}: {r['note']}" for r in failed]
    if best is not None:
        lines += [
            "",
            f"Best: trial {best['trial']} (val macro-F1 {best[OBJECTIVE]:.4f}). "
            f"Train it: `python -m keras_art.train --config "
            f"{settings['folder']}/best_config.json`.",
        ]
    return "\n".join(lines) + "\n"


def progress_line(row: dict, names: list[str], best: dict | None, total) -> str:
    """One line per finished trial: values, score, time, and the best so far."""
    values = " ".join(f"{n}={_fmt(row[n])}" for n in names if row[n] != "")
    of = f"/{total}" if total else ""
    if row["status"] == "COMPLETED" and row[OBJECTIVE] != "":
        result = (
            f"val_f1 {row[OBJECTIVE]:.4f} top1 {row['val_top1']:.3f} "
            f"({row['epochs']:.0f} epochs, {row['seconds']:.0f} s)"
        )
    else:
        result = f"{row['status']}: {row['note']}"
    so_far = f" | best {best[OBJECTIVE]:.4f} (trial {best['trial']})" if best else ""
    return f"trial {row['trial']}{of}: {values} -> {result}{so_far}"


def _metric(trial, name: str):
    if not trial.metrics.exists(name):
        return ""
    value = (
        trial.metrics.get_best_value(name)
        if name == OBJECTIVE
        else trial.metrics.get_last_value(name)
    )
    return "" if value is None else float(value)


def _fmt(value, pattern: str = "{:.4g}") -> str:
    if isinstance(value, float):
        return pattern.format(value)
    return str(value)


def _last_line(message: str) -> str:
    """A failed trial's traceback -> its last line, without the exception's
    module path (``keras_tuner.src.errors.FailedTrialError: ``)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return re.sub(r"^[\w.]+\.(\w+Error): ", r"\1: ", last)
