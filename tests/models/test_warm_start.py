"""Warm starts (``train.init_from``): a run's weights into a model with another
head, layer by layer where names and shapes match, and what was not loaded."""

import json

import keras
import numpy as np
import pytest

from keras_art.errors import ParameterError
from keras_art.models.warm_start import load_matching_weights, weighted_layers
from keras_art.run_dir import RunDir
from keras_art.train import main
from tests.training import tiny


def _weights(model) -> dict[str, list[np.ndarray]]:
    return {path: layer.get_weights() for path, layer in weighted_layers(model).items()}


def _saved_run(tmp_path, model) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    model.save(run.best_model)
    return run


def test_a_run_loads_into_another_head_where_names_and_shapes_match(tmp_path):
    source = tiny.tiny_model(dense=(8,))
    for w in source.weights:  # far from any fresh initialisation
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype("float32"))
    run = _saved_run(tmp_path, source)
    target = tiny.tiny_model(tasks=("artist", "style"), dense=(16,))
    before = _weights(target)

    report = load_matching_weights(target, run.path)

    after, loaded = _weights(target), _weights(source)
    backbone = [p for p in after if p.startswith("backbone/")]
    assert len(backbone) == 10 and set(backbone) <= set(report.loaded)
    for path in report.loaded:
        for mine, theirs in zip(after[path], loaded[path], strict=True):
            np.testing.assert_array_equal(mine, theirs, err_msg=path)
    assert dict(report.skipped) == {
        "head/head_dense_0": "shapes differ: 4x8, 8 in the source, 4x16, 16 here",
        "head/head_artist": "shapes differ: 8x3, 3 in the source, 16x3, 3 here",
        "head/head_style": "not in the source",
    }
    for path in dict(report.skipped):  # left as they were
        for mine, old in zip(after[path], before[path], strict=True):
            np.testing.assert_array_equal(mine, old, err_msg=path)
    assert report.unused == ["head/head_dense_0", "head/head_artist"]
    assert report.loaded_parameters == sum(
        w.size for p in report.loaded for w in loaded[p]
    )
    record = json.loads(json.dumps(report.as_dict()))
    assert record["source"] == str(run.path) and record["loaded_layers"] == 10
    assert "10 layers loaded" in report.summary() and "3 skipped" in report.summary()


def test_a_plain_backbone_file_matches_by_layer_name(tmp_path):
    """A model without the ``backbone/`` level (a bare backbone saved as .keras)
    loads by bare layer names, each unique in both models."""
    bare = tiny.tiny_backbone()
    path = tmp_path / "bare.keras"
    bare.save(path)
    report = load_matching_weights(tiny.tiny_model(), path)
    assert sorted(report.loaded) == sorted(f"backbone/{p}" for p in _weights(bare))


def test_unusable_sources_are_one_line_errors(tmp_path):
    with pytest.raises(ParameterError, match="no such run directory or .keras"):
        load_matching_weights(tiny.tiny_model(), tmp_path / "nope")
    with pytest.raises(ParameterError, match="this folder has no best.keras"):
        load_matching_weights(tiny.tiny_model(), tmp_path)
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ParameterError, match="weights.h5: not a .keras file"):
        load_matching_weights(tiny.tiny_model(), tmp_path / "weights.h5")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a readable Keras model"):
        load_matching_weights(tiny.tiny_model(), broken)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ParameterError, match="shares no layer"):
        load_matching_weights(tiny.tiny_model(), tmp_path / "other.keras")


def test_train_init_from_a_bad_path_exits_2_naming_the_flag(tmp_path, capsys):
    argv = ["--weights", "none", "--workdir", str(tmp_path), "--init-from"]
    assert main([*argv, str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --init-from {tmp_path / 'nope'}: no such run")
    assert len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # stopped before making a run directory
