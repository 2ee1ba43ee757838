"""prepare_data end to end on fixtures, and the files a run directory gets."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from keras_art.config import Config
from keras_art.data.catalog.prepare import prepare_data, write_data_files
from keras_art.errors import UserError
from tests.data.fixtures import STYLES, make_best_artworks, make_folder, make_wikiart


def _cfg(tmp_path, fmt, task, root, **data):
    cfg = Config(task=task)
    cfg.data.format = fmt
    cfg.data.path = str(root)
    cfg.data.cache_dir = str(tmp_path / "cache")
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


def test_wikiart_single_task_end_to_end(tmp_path):
    fx = make_wikiart(tmp_path / "ds")
    # one listed image is unreadable: excluded by validation, with its reason
    broken = fx["images"] / fx["paths"][7]
    broken.write_bytes(b"")
    cfg = _cfg(tmp_path, "wikiart", "style", tmp_path / "ds", split=[0.7, 0.15, 0.15])
    prep = prepare_data(cfg)

    assert prep.tasks == ("style",)
    assert prep.class_names == {"style": STYLES}
    assert prep.num_classes == {"style": 4}
    assert len(prep.files) == 23
    assert set(prep.split) == {"train", "val", "test"}
    by_name = {f.split("/wikiart/")[1]: i for i, f in enumerate(prep.files)}
    for i in fx["val"]["style"]:
        assert prep.split[by_name[fx["paths"][i]]] == "val"  # official val kept
    for i in fx["train"]["style"]:
        if fx["paths"][i] in by_name:
            assert prep.split[by_name[fx["paths"][i]]] in ("train", "test")
    sizes = {s: len(prep.indices(s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 23

    report = prep.report
    reasons = {e["file"]: e["reason"] for e in report["excluded"]}
    assert reasons[str(broken)] == "zero bytes"
    assert "missing on disk" in reasons[str(fx["images"] / fx["missing"])]
    assert report["split_mode"] == "official"
    assert "carved" in report["split_meaning"]["test"]
    assert report["split_note"].startswith("train: the source's official train")
    assert report["seed"] == 42
    assert sum(report["counts"]["style"]["val"].values()) == sizes["val"]

    run = tmp_path / "run"
    write_data_files(prep, run)
    assert json.loads((run / "classes.json").read_text()) == {"style": STYLES}
    with open(run / "splits.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "style", "split"]
    assert len(rows) == 24
    assert {r[1] for r in rows[1:]} <= set(STYLES)
    assert any("grã©goire" in r[0] for r in rows[1:])
    saved = json.loads((run / "data_report.json").read_text())
    assert saved["counts"] == report["counts"]


def test_wikiart_multi_task_never_trains_on_eval_images(tmp_path):
    fx = make_wikiart(tmp_path / "ds")
    cfg = _cfg(tmp_path, "wikiart", "multi", tmp_path / "ds", split=[0.8, 0.2])
    prep = prepare_data(cfg)
    assert prep.tasks == ("artist", "genre", "style")
    any_val = set().union(*fx["val"].values())
    any_train = set().union(*fx["train"].values())
    by_name = {f.split("/wikiart/")[1]: i for i, f in enumerate(prep.files)}
    for i in any_val:
        assert prep.split[by_name[fx["paths"][i]]] == "val"
    assert prep.report["multi_task_moved_to_eval"] == len(any_val & any_train)
    assert any("overlap" in n for n in prep.report["notes"])
    # labels missing for a task stay -1; every row has at least one label
    stacked = np.stack([prep.labels[t] for t in prep.tasks])
    assert np.all((stacked >= 0).any(axis=0))
    assert np.any(stacked == -1)

    write_data_files(prep, tmp_path / "run")
    with open(tmp_path / "run" / "splits.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "artist", "genre", "style", "split"]
    assert any(r["genre"] == "" for r in rows)


def test_folder_with_subset_duplicates_and_bad_file(tmp_path):
    fx = make_folder(tmp_path / "ds", per_class=6)
    root = fx["root"]
    # the same bytes under two classes' folders, and a text file named .jpg
    shutil.copy(root / "Baroque" / "baroque_2.jpg", root / "Baroque" / "copy.jpg")
    (root / "Rococo" / "notes.jpg").write_text("hello")
    cfg = _cfg(tmp_path, "folder", "genre", root, top_n=2, split=[0.5, 0.25, 0.25])
    prep = prepare_data(cfg)
    # Baroque 7; Cubism and Rococo tie at 6 (notes.jpg excluded): lower index wins
    assert prep.class_names["genre"] == ["Baroque", "Cubism"]
    assert any(e["file"].endswith("notes.jpg") for e in prep.report["excluded"])
    dup = [
        i for i, f in enumerate(prep.files) if f.endswith(("baroque_2.jpg", "copy.jpg"))
    ]
    assert len(dup) == 2 and prep.split[dup[0]] == prep.split[dup[1]]
    assert prep.report["subset"]["kept_classes"]["Baroque"]["after"] == 7
    # a second preparation is identical (seeded, cached scan)
    again = prepare_data(cfg)
    assert again.files == prep.files and list(again.split) == list(prep.split)
    assert again.report["scan"]["from_cache"] == again.report["scan"]["checked"]


def test_best_artworks_small_class_dropped_and_reported(tmp_path):
    make_best_artworks(tmp_path / "ds")
    cfg = _cfg(tmp_path, "best-artworks", "artist", tmp_path / "ds", validate=False)
    cfg.data.split = [0.6, 0.2, 0.2]
    prep = prepare_data(cfg)
    # Pollock (1) and Gauguin (2) cannot fill 3 splits: dropped, removed, reported
    assert prep.class_names["artist"] == ["Albrecht Dürer", "Claude Monet"]
    assert prep.report["splits"]["dropped_rows"] == 3
    assert any("Jackson Pollock" in n for n in prep.report["notes"])
    assert prep.labels["artist"].max() == len(prep.class_names["artist"]) - 1


def test_embedded_sample_multi_task(tmp_path):
    cfg = Config(task="multi")
    cfg.data.cache_dir = str(tmp_path / "cache")
    cfg.data.sample_images = 32
    prep = prepare_data(cfg)
    assert prep.tasks == ("artist", "genre", "style")
    assert prep.report["source"] == "sample"
    assert len(prep.indices("train")) > 0 and len(prep.indices("val")) > 0
    assert all(len(prep.labels[t]) == len(prep.files) for t in prep.tasks)


def test_every_config_format_has_a_reader():
    from keras_art.config import DATASET_FORMATS
    from keras_art.data.sources import DATASET_READERS

    assert set(DATASET_READERS) == set(DATASET_FORMATS)


def test_user_errors(tmp_path):
    make_best_artworks(tmp_path / "ba")
    with pytest.raises(UserError, match="no genre labels"):
        prepare_data(_cfg(tmp_path, "best-artworks", "genre", tmp_path / "ba"))
    make_wikiart(tmp_path / "wk")
    with pytest.raises(UserError, match="select classes of one task"):
        prepare_data(_cfg(tmp_path, "wikiart", "multi", tmp_path / "wk", top_n=2))
    cfg = _cfg(tmp_path, "best-artworks", "artist", tmp_path / "ba")
    cfg.data.small_classes = "error"
    with pytest.raises(UserError, match="fewer than the 3 splits"):
        prepare_data(cfg)


def test_split_sizes_sample_after_the_subset(tmp_path):
    fx = make_folder(tmp_path / "ds", per_class=8)
    cfg = _cfg(tmp_path, "folder", "genre", fx["root"], validate=False)
    cfg.data.classes, cfg.data.split_sizes = ["Baroque", "Rococo"], [8, 4, 3]
    prep = prepare_data(cfg)
    assert prep.class_names["genre"] == ["Baroque", "Rococo"]
    assert {s: len(prep.indices(s)) for s in ("train", "val", "test")} == {
        "train": 8,
        "val": 4,
        "test": 3,
    }
    assert len(prep.files) == 15  # the 16th image is left out
    assert prep.report["split_sizes"] == [8, 4, 3]
    assert prep.report["split_mode"] == "sized"
    cfg.data.split_sizes = [12, 4, 1]
    with pytest.raises(UserError, match=r"asks for 17 images .* but 16 are left"):
        prepare_data(cfg)
    make_wikiart(tmp_path / "wk")
    cfg = _cfg(tmp_path, "wikiart", "style", tmp_path / "wk", split_sizes=[4, 2])
    with pytest.raises(UserError, match="data.use_official_split=false"):
        prepare_data(cfg)
    cfg.data.use_official_split = False
    assert len(prepare_data(cfg).files) == 6
