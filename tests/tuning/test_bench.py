"""``python -m tuning.bench tune``: tuning's benchmark runs in keras_art's bench frame
(keras_art never imports tuning, so ``keras_art.bench`` does not list it)."""

import pytest

from keras_art.benchmarks import registry
from tuning import bench


def test_tune_bench_runs_in_the_bench_frame(capsys):
    with pytest.raises(SystemExit) as done:
        bench.main(["tune", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m tuning.bench tune")
    assert "--image-size" in out and "--json" in out  # the frame adds --json
    assert bench.main(["tune", "--epochs"]) == 2  # a bad flag: one line, exit 2
    assert "tune" not in registry()


def test_keras_art_bench_tune_names_the_command_that_runs_it(capsys):
    from keras_art import bench as keras_art_bench

    assert keras_art_bench.main(["tune", "--image-size", "32"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: python -m keras_art.bench tune: that benchmark runs as python -m "
        "tuning.bench tune (same flags)."
    )
