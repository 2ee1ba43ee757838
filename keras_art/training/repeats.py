"""Repeats: one config trained once per seed into a group of run directories.

    python -m keras_art.train --task artist --preset smoke --seeds 0,1,2

Only ``train.seed`` changes between repeats (weight initialisation, dropout, the
order and augmentation of the training images); the data, and with it the split
(``data.split_seed``), stay the config's, so every repeat is tested on the same
images and `keras_art.evaluation.compare` can pair them. The group lives in
``<workdir>/<run_name>/`` (default ``<task>-<head>-seeds-<seeds>``, so running the
same command again finds it): ``group.json`` (the seeds and the shared config) and
one run directory per seed, ``seed-<seed>/`` (`keras_art.run_dir.GroupDir`).

Running the same command again continues the group: finished repeats are skipped,
an unfinished one resumes from its last epoch checkpoint (`train`'s own resume; one
stopped before its first checkpoint starts again), and the rest train. Other
settings under the same name are refused rather than mixed into the group.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_art.config import Config, config_from_dict
from keras_art.errors import ParameterError
from keras_art.run_dir import GroupDir, RunDir

logger = logging.getLogger(__name__)

# What a repeat changes, and what the group's manifest leaves out of the shared
# config (where the group is, and the seed).
VARIED_KEY = "train.seed"
_NOT_SHARED = ("workdir", "run_name")


@dataclass
class GroupResult:
    group_dir: Path
    runs: list[Path]  # one per seed, in the seeds' order


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as a list of distinct non-negative ints, at least two."""
    values = list(seeds)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in values):
        raise ParameterError(f"{{seeds}} {values}: pass non-negative integers.")
    if len(set(values)) != len(values):
        raise ParameterError(f"{{seeds}} {values}: a seed is repeated. Pass each once.")
    if len(values) < 2:
        raise ParameterError(
            f"{{seeds}} {values}: a group needs at least two seeds (one run: "
            "{train.seed})."
        )
    return values


def group_name(cfg: Config, seeds: Sequence[int]) -> str:
    """``cfg.run_name``, or ``<task>-<head>-seeds-<s1>-<s2>...``: a name that the
    same command gives again, so a re-run finds the group."""
    return cfg.run_name or (
        f"{cfg.task}-{cfg.model.head}-seeds-{'-'.join(str(s) for s in seeds)}"
    )


def train_repeats(
    cfg: Config,
    seeds: Sequence[int],
    *,
    train_fn: Callable[..., Any] | None = None,
    after_each: Callable[[RunDir, dict], None] | None = None,
    seed_each: Callable[[int], None] | None = None,
) -> GroupResult:
    """Train ``cfg`` once per seed of ``seeds`` (``train.seed``) into one group.

    ``train_fn(cfg, resume=...)`` trains one run (default `train`); ``after_each(run,
    summary)`` is called for every finished repeat, skipped ones included (the
    train command writes a missing test report there); ``seed_each(seed)`` sets the
    process-wide seeds before a repeat (the command passes
    ``keras.utils.set_random_seed``)."""
    seeds = check_seeds(seeds)
    if cfg.train.strategy == "multi_worker":
        raise ParameterError(
            "{seeds} with {train.strategy} multi_worker: train each seed as its own "
            "run ({train.seed})."
        )
    if train_fn is None:
        from keras_art.training.train import train as train_fn
    group = GroupDir(Path(cfg.workdir).expanduser() / group_name(cfg, seeds))
    _open_group(group, seeds, shared_config(cfg))
    for i, seed in enumerate(seeds, 1):
        run = group.run(seed)
        label = f"repeat {i}/{len(seeds)} (seed {seed})"
        if run.is_finished():
            logger.info("%s: finished earlier, skipped: %s", label, run)
        else:
            repeat_cfg, resume = _repeat_config(cfg, group, run, seed)
            logger.info("%s: %s %s", label, "resuming" if resume else "training", run)
            if seed_each is not None:
                seed_each(seed)
            train_fn(repeat_cfg, resume=resume)
        if after_each is not None:
            after_each(run, run.read_summary())
    return GroupResult(group.path, [group.run(s).path for s in seeds])


def shared_config(cfg: Config) -> dict[str, Any]:
    """The config every repeat shares: ``cfg`` without its place and seed."""
    raw = json.loads(cfg.to_json())
    for key in _NOT_SHARED:
        raw.pop(key, None)
    raw["train"].pop("seed", None)
    return raw


def _repeat_config(cfg: Config, group: GroupDir, run: RunDir, seed: int):
    """The repeat's config and whether it resumes: a started repeat with an epoch
    checkpoint continues with its own config.json; one that has none starts again
    (nothing learnt is lost)."""
    if run.is_run() and run.latest_checkpoint() is not None:
        repeat = config_from_dict(run.read_config(), source=str(run.config))
        resume = True
    else:
        if run.path.exists():
            shutil.rmtree(run.path)
        repeat = config_from_dict(json.loads(cfg.to_json()))
        repeat.train.seed = seed
        resume = False
    repeat.workdir, repeat.run_name = str(group.path), run.name
    return repeat.validate(), resume


def _open_group(group: GroupDir, seeds: list[int], shared: dict) -> None:
    """Write the manifest of a new group; check an existing one holds these seeds
    and this config."""
    if not group.is_group():
        if group.path.exists() and any(group.path.iterdir()):
            raise ParameterError(
                f"{{run_name}} {group.path}: a folder with other files. Pick another "
                "{run_name} or {workdir}."
            )
        group.path.mkdir(parents=True, exist_ok=True)
        group.write_manifest(
            {
                "seeds": seeds,
                "runs": [group.run(s).name for s in seeds],
                "varies": VARIED_KEY,
                "config": shared,
            }
        )
        return
    manifest = group.read_manifest()
    if [int(s) for s in manifest["seeds"]] != seeds:
        raise ParameterError(
            f"{{run_name}} {group.path}: a group of seeds {manifest['seeds']}, not "
            f"{seeds}. Pick another {{run_name}}, or pass its seeds."
        )
    difference = _first_difference(manifest.get("config", {}), shared)
    if difference:
        raise ParameterError(
            f"{{run_name}} {group.path}: its repeats were trained with other settings "
            f"({difference}). Pick another {{run_name}}, or re-run with the settings "
            "it started with."
        )


def _first_difference(before: Any, now: Any, prefix: str = "") -> str | None:
    """``key: before there, now here`` for the first dotted key that differs."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in sorted(set(before) | set(now)):
            found = _first_difference(before.get(key), now.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    if before != now:
        return f"{prefix.rstrip('.')}: {before!r} there, {now!r} now"
    return None


def group_table(result: GroupResult, split: str = "test") -> str:
    """Each repeat's ``split`` scores (from its summary) and their mean and
    standard deviation, as plain text."""
    import numpy as np

    rows, scores = [], {}
    for path in result.runs:
        metrics = RunDir(path).read_summary().get("metrics", {}).get(split, {})
        for task, m in metrics.items():
            rows.append(
                f"{path.name:<12}{task:<8}{m['top1']:>8.3f}{m['macro_f1']:>9.3f}"
            )
            scores.setdefault(task, []).append((m["top1"], m["macro_f1"]))
    lines = [f"{'repeat':<12}{'task':<8}{'top1':>8}{'macroF1':>9}", *rows]
    for task, values in scores.items():
        v = np.array(values)
        sd = v.std(axis=0, ddof=1) if len(v) > 1 else np.zeros(2)
        lines.append(
            f"{'mean ± sd':<12}{task:<8}{v[:, 0].mean():>8.3f}{v[:, 1].mean():>9.3f}"
            f"   (sd {sd[0]:.3f} / {sd[1]:.3f}, {split} split, {len(v)} repeats)"
        )
    return "\n".join(lines)
