"""A consistent copy of KerasTuner's state files, taken after every finished trial.

KerasTuner writes ``oracle.json``, ``tuner0.json`` and ``trial_*/trial.json`` in
place, not atomically (``keras_tuner.src.utils.save_json`` opens the file for
writing and writes): a search killed (``kill -9``, out of memory, power) while one
is being written leaves an empty or cut file, and the next run fails to reload with
a JSONDecodeError. There is no public hook to make those writes atomic, so after
each trial `save` copies the state files (each atomically, the list last), and
`restore_if_broken` puts that copy back when a state file no longer parses: the
search goes on from its last finished trial (the trial that was running is run
again, as KerasTuner does after any interruption).

`tests/tuning/test_state_snapshot.py` fails loudly if KerasTuner renames its files.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from keras_art.atomic_files import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

SNAPSHOT = ".state_snapshot"
MANIFEST = "manifest.json"
STATE_PATTERNS = ("oracle.json", "tuner*.json", "trial_*/trial.json")


def state_files(project: Path) -> list[Path]:
    """KerasTuner's state files in ``project`` (relative paths, sorted)."""
    found = {
        p.relative_to(project) for pat in STATE_PATTERNS for p in project.glob(pat)
    }
    return sorted(found)


def save(project: Path) -> None:
    """Copy the state files into ``project/.state_snapshot`` (manifest last)."""
    folder = project / SNAPSHOT
    files = [str(p) for p in state_files(project) if _parses(project / p)]
    for rel in files:
        atomic_write_bytes(folder / rel, (project / rel).read_bytes())
    atomic_write_json(folder / MANIFEST, {"files": files})


def restore_if_broken(project: Path) -> str | None:
    """Put the last snapshot back when a state file does not parse.

    Returns None when every state file parses (KerasTuner reloads as usual),
    ``"restored"`` when the snapshot was put back (trial folders it does not know,
    trials started after it, are removed, so KerasTuner reloads exactly the state
    after the last finished trial), and ``"fresh"`` when there is no snapshot: no
    trial had finished, so the search starts again from nothing."""
    broken = [p for p in state_files(project) if not _parses(project / p)]
    if not broken:
        return None
    what = ", ".join(str(p) for p in broken)
    manifest = project / SNAPSHOT / MANIFEST
    if not manifest.is_file():
        logger.info(
            "search: the last run stopped while KerasTuner was writing %s, before "
            "any trial finished; starting afresh",
            what,
        )
        return "fresh"
    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    known_trials = {Path(f).parts[0] for f in files if f.startswith("trial_")}
    for trial_dir in project.glob("trial_*"):
        if trial_dir.name not in known_trials:
            shutil.rmtree(trial_dir)
    for rel in files:
        atomic_write_bytes(project / rel, (project / SNAPSHOT / rel).read_bytes())
    logger.info(
        "search: the last run stopped while KerasTuner was writing %s; its state "
        "after the last finished trial is restored",
        what,
    )
    return "restored"


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True
