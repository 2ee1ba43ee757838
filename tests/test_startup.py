"""Commands start quietly: one error line, not TensorFlow's C++ start-up chatter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_art import startup

REPO = Path(__file__).resolve().parents[1]


def _command(args, **env):
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    "args, first_words",
    [
        (["-m", "keras_art.train", "--bogus"], "error: python -m keras_art.train:"),
        (["-m", "tuning.search", "--task", "x"], "error: python -m tuning.search:"),
    ],
)
def test_a_bad_flag_prints_exactly_one_line(args, first_words):
    done = _command(args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(first_words)


def test_the_users_own_log_level_still_shows_tensorflows_lines():
    done = _command(["-m", "keras_art.train", "--bogus"], TF_CPP_MIN_LOG_LEVEL="0")
    assert done.returncode == 2
    assert "absl::InitializeLog" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: ")


def test_only_start_up_noise_is_filtered():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\n"
        "I0000 00:00:1796204386.894396   21579 port.cc:153] oneDNN custom ops\n"
        "W0000 00:00:1796204386.928416   21579 cpu_feature_guard.cc:227] AVX\n"
        "To enable the following instructions: AVX2 FMA, in other operations\n"
        "E0000 00:00:1796204386.928416   21579 cuda_dnn.cc:8] cuDNN failed\n"
        "Traceback (most recent call last):\n"
    )
    assert startup.without_startup_noise(text) == (
        "E0000 00:00:1796204386.928416   21579 cuda_dnn.cc:8] cuDNN failed\n"
        "Traceback (most recent call last):\n"
    )


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-m"], True),
        (["/venv/bin/keras-art-train", "--task", "artist"], True),
        ([str(REPO / "tuning" / "search.py")], True),
        ([str(REPO / "data_scripts" / "make_tfrecords.py")], True),
        (["/venv/bin/pytest"], False),
        ([str(REPO / "tests" / "training" / "run_tiny.py")], False),
        (["-c"], False),
        ([], False),
    ],
)
def test_started_as_command(argv, expected):
    assert startup.started_as_command(argv) is expected
