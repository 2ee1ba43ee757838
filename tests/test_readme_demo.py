"""The README's main command, as written, learns (minutes: gated by --run-large)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.large
def test_readme_demo_command_learns(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "keras_art.train", "--task", "artist"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    # 8 artists: chance is 0.125; the demo reaches ~0.9 from random init.
    assert summary["metrics"]["test"]["artist"]["top1"] > 0.6
