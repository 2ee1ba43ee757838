"""`find_models` on a folder of models (stand-in files: nothing is loaded)."""

import logging

import pytest

from keras_art.demo.discovery import MAX_DEPTH, find_models
from keras_art.errors import ParameterError
from keras_art.run_dir import RunDir


def _run(folder, finished=True):
    run = RunDir(folder)
    run.path.mkdir(parents=True)
    run.write_config("{}")
    if finished:
        run.write_summary({})
        (run.path / "eval" / "test").mkdir(parents=True)  # never searched
    return run.path


def _saved_model(folder):
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "variables").mkdir()
    return folder


def _tflite(path, sidecar=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    if sidecar:
        path.with_suffix(".json").write_text("{}")
    return path


@pytest.fixture
def models(tmp_path):
    """Every kind, plus what must be left out."""
    _run(tmp_path / "runs" / "b-run")
    _run(tmp_path / "runs" / "a-run")
    _run(tmp_path / "runs" / "unfinished", finished=False)
    _saved_model(tmp_path / "serving" / "painters" / "2")
    _saved_model(tmp_path / "serving" / "painters" / "10")
    _saved_model(tmp_path / "serving" / "painters" / ".11.x.tmp")
    _saved_model(tmp_path / "plain")
    _tflite(tmp_path / "models" / "painters.tflite")
    _tflite(tmp_path / "models" / "lone.tflite", sidecar=False)
    _tflite(tmp_path / "runs" / "a-run" / "inside.tflite")  # inside a run
    deep = tmp_path.joinpath(*["d"] * MAX_DEPTH)
    _tflite(deep / "too-deep.tflite")
    return tmp_path


def test_a_folder_lists_runs_then_saved_models_then_tflite(models, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_art"):
        found = find_models(models)
    assert [(m.name, m.kind, m.path) for m in found] == [
        ("runs/a-run - run directory", "run", models / "runs" / "a-run"),
        ("runs/b-run - run directory", "run", models / "runs" / "b-run"),
        ("plain - SavedModel", "saved_model", models / "plain"),
        (
            "serving/painters (version 10) - SavedModel",
            "saved_model",
            models / "serving" / "painters" / "10",
        ),
        (
            "models/painters.tflite - TFLite file",
            "tflite",
            models / "models" / "painters.tflite",
        ),
    ]
    assert "skipped" in caplog.text and "lone.tflite: no lone.json" in caplog.text
    assert "unfinished: an unfinished run" in caplog.text


def test_one_model_is_itself(models):
    painters = models / "serving" / "painters"
    (one,) = find_models(painters)
    assert (one.name, one.path) == (
        "painters (version 10) - SavedModel",
        painters / "10",
    )
    (one,) = find_models(models / "runs" / "a-run")
    assert (one.name, one.kind) == ("a-run - run directory", "run")
    (one,) = find_models(models / "models" / "painters.tflite")
    assert (one.name, one.kind) == ("painters.tflite - TFLite file", "tflite")


def test_no_model_names_the_parameter(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ParameterError) as err:
        find_models(tmp_path)
    assert str(err.value).startswith(f"model {tmp_path}: no models in it")
    with pytest.raises(ParameterError, match="no such file or folder"):
        find_models(tmp_path / "missing")
    with pytest.raises(ParameterError, match="not a model"):
        find_models(tmp_path / "notes.txt")
