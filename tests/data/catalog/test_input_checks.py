"""Degenerate data stops with one line (exit 2) or a named warning, never a
meaningless run: one class, a class with one image, nothing readable."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from keras_art.config import Config, DataConfig
from keras_art.data.catalog.input_checks import require_classes
from keras_art.data.catalog.prepare import prepare_data
from keras_art.data.catalog_type import Catalog
from keras_art.errors import UserError
from tests.data.fixtures import write_jpeg


def _folder(root, sizes: dict[str, int]):
    seed = 0
    for name, n in sizes.items():
        for k in range(n):
            write_jpeg(root / name / f"{name.lower()}_{k}.jpg", seed, size=16)
            seed += 1
    return root


def _corrupt_folder(root):
    for name in ("Baroque", "Cubism"):
        (root / name).mkdir(parents=True)
        for k in range(3):
            (root / name / f"x{k}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(40))
    return root


def _cfg(tmp_path, root, task="style", **data) -> Config:
    cfg = Config(task=task)
    cfg.data.format, cfg.data.path = "folder", str(root)
    cfg.data.cache_dir = str(tmp_path / "cache")
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


def test_train_refuses_one_class_before_building_a_model(tmp_path, capsys, monkeypatch):
    from keras_art import train as command
    from keras_art.training import train as library

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(library, "build_classifier", no_model)
    root = _folder(tmp_path / "ds", {"Baroque": 6})
    argv = ["--task", "style", "--data", str(root), "--preset", "smoke"]
    argv += ["--workdir", str(tmp_path / "runs"), "--set", f"data.cache_dir={tmp_path}"]
    assert command.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: task style: the data has images of 1 class (Baroque), and a "
        "classifier needs at least 2 classes per task. Point --data at data with 2 "
        "or more classes (the folder format: one subfolder per class)."
    )
    assert not any((tmp_path / "runs").iterdir())  # no run directory left behind


def test_every_task_of_a_multi_task_run_needs_two_classes():
    catalog = Catalog(
        files=["a", "b", "c"],
        labels={"artist": np.array([0, 1, 1]), "genre": np.array([2, 2, -1])},
        class_names={"artist": ["Monet", "Goya"], "genre": ["x", "y", "portrait"]},
        source="fixture",
    )
    require_classes(catalog, ("artist",))
    with pytest.raises(UserError, match=r"^task genre: .* 1 class \(portrait\)"):
        require_classes(catalog, ("artist", "genre"))
    with pytest.raises(UserError, match=r"removed before: genre: 1 class"):
        require_classes(catalog, ("genre",), removed=["genre: 1 class ..."])


def test_a_class_too_small_to_split_is_named_dropped_or_refused(tmp_path, caplog):
    root = _folder(tmp_path / "ds", {"Baroque": 6, "Cubism": 6, "Rococo": 1})
    with caplog.at_level(logging.WARNING, logger="keras_art"):
        prep = prepare_data(_cfg(tmp_path, root))
    assert prep.class_names["style"] == ["Baroque", "Cubism"]
    note = (
        "style: 1 class(es) with fewer images than splits dropped (Rococo; "
        "data.small_classes=drop, set it to error to stop instead)"
    )
    assert note in prep.report["notes"] and note in caplog.text
    with pytest.raises(UserError, match=r"^class Rococo \(index 2\) has 1 image"):
        prepare_data(_cfg(tmp_path, root, small_classes="error"))
    # Dropping it leaves one class: refused, saying what was removed.
    two = _folder(tmp_path / "two", {"Baroque": 6, "Rococo": 1})
    with pytest.raises(UserError, match=r"1 class \(Baroque\).*removed before: st"):
        prepare_data(_cfg(tmp_path, two))


def test_nothing_readable_is_one_line_in_every_command(tmp_path, capsys):
    from data_scripts import dataset_stats
    from keras_art.evaluation.evaluate_run import collection_rows

    root = _corrupt_folder(tmp_path / "bad")
    line = (
        f"no readable images in {root}: 6 files, all failed to decode (first: "
        f"{root / 'Baroque' / 'x0.jpg'}: "
    )
    with pytest.raises(UserError) as info:
        prepare_data(_cfg(tmp_path, root))
    assert str(info.value).startswith(line) and "Check data.path." in str(info.value)
    record = SimpleNamespace(tasks=("style",), class_names={"style": ["Baroque"]})
    with pytest.raises(UserError, match="no readable images in"):
        collection_rows(record, str(root), "folder")
    argv = ["--data", str(root), "--task", "style", "--out", str(tmp_path / "o")]
    assert dataset_stats.main([*argv, "--set", f"data.cache_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {line}") and err.endswith("Check --data.")
    assert len(err.splitlines()) == 1


def test_dataset_stats_warns_of_what_training_refuses_or_drops(tmp_path):
    from data_scripts.dataset_stats import dataset_stats

    root = _folder(tmp_path / "ds", {"Baroque": 4, "Rococo": 1})
    data = DataConfig(format="folder", path=str(root), cache_dir=str(tmp_path))
    stats = dataset_stats(data, "style", str(tmp_path / "out"))
    assert stats["warnings"] == [
        "style: 1 class(es) with fewer images than the 3 splits (Rococo: 1); "
        "training drops them (data.small_classes=drop) or stops (error)."
    ]
    assert stats["near_duplicates"]["groups"] == 0
    one = _folder(tmp_path / "one", {"Baroque": 4})
    data = DataConfig(format="folder", path=str(one), cache_dir=str(tmp_path))
    stats = dataset_stats(data, "style", str(tmp_path / "out1"))
    assert stats["warnings"][0].startswith("style: images of 1 class (Baroque)")
