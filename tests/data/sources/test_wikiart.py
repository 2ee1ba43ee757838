"""The WikiArt refined-release reader against a fixture with the real quirks."""

from __future__ import annotations

import numpy as np
import pytest

from keras_art.config import DataConfig
from keras_art.data.sources import load_catalog
from keras_art.data.sources.wikiart import read_wikiart
from keras_art.errors import UserError
from tests.data.fixtures import GENRES, STYLES, make_wikiart


def _cfg(root, **kw):
    return DataConfig(format="wikiart", path=str(root), **kw)


def _row(catalog, rel):
    return next(i for i, f in enumerate(catalog.files) if f.endswith(rel))


@pytest.mark.parametrize("ext_names", [False, True])
def test_reads_both_file_name_variants_and_joins_tasks(tmp_path, ext_names):
    fx = make_wikiart(tmp_path, ext_names=ext_names)
    cat = load_catalog(_cfg(tmp_path), task="multi")
    assert len(cat) == 24  # every listed image on disk, once
    assert cat.class_names["style"] == STYLES
    assert cat.class_names["genre"] == GENRES
    for i, rel in enumerate(fx["paths"]):
        row = _row(cat, rel)
        assert cat.labels["style"][row] == fx["style"][i]
    # image 4 is in no genre list: -1, not dropped
    assert cat.labels["genre"][_row(cat, fx["paths"][4])] == -1
    # artist rows parsed through header + blank line + double comma
    assert cat.labels["artist"][_row(cat, fx["paths"][22])] == fx["artist"][22]


def test_labels_by_index_not_folder(tmp_path):
    fx = make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path), task="style")
    row = _row(cat, fx["paths"][3])
    assert "Art_Nouveau_Modern/" in cat.files[row]
    assert cat.class_names["style"][cat.labels["style"][row]] == "Art_Nouveau"


def test_mojibake_path_used_as_written(tmp_path):
    make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path))
    assert any(f.endswith("grã©goire-michonze_the-village.jpg") for f in cat.files)


def test_duplicates_and_missing_files_are_reported(tmp_path):
    fx = make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path))
    assert any("genre_val.csv lists 1 row(s) twice" in n for n in cat.notes)
    assert [p for p, _ in cat.excluded] == [str(fx["images"] / fx["missing"])]
    assert "missing on disk" in cat.excluded[0][1]


def test_single_task_uses_its_own_lists(tmp_path):
    fx = make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path), task="style")
    for i, rel in enumerate(fx["paths"]):
        want = "val" if i in fx["val"]["style"] else "train"
        assert cat.official_split[_row(cat, rel)] == want


def test_multi_task_overlap_goes_to_val_and_is_reported(tmp_path):
    fx = make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path), task="multi")
    tasks = ("style", "genre", "artist")
    any_val = set().union(*(fx["val"][t] for t in tasks))
    any_train = set().union(*(fx["train"][t] for t in tasks))
    for i, rel in enumerate(fx["paths"]):
        want = "val" if i in any_val else "train"
        assert cat.official_split[_row(cat, rel)] == want
    # image 0 is style val and genre train
    assert cat.official_split[_row(cat, fx["paths"][0])] == "val"
    for a in tasks:
        for b in tasks:
            both = len(set(fx["val"][a]) & set(fx["train"][b]))
            if a != b and both:
                text = f"{both} image(s) of the {a} val list are in the {b} train"
                assert any(text in n for n in cat.notes)
    moved = len(any_val & any_train)
    assert any(f"multi-task: {moved} image(s)" in n for n in cat.notes)


def test_images_and_labels_dir_overrides(tmp_path):
    make_wikiart(tmp_path / "release")
    cfg = DataConfig(
        format="wikiart",
        images_dir=str(tmp_path / "release" / "wikiart"),
        labels_dir=str(tmp_path / "release" / "wikiart_csv"),
    )
    assert len(load_catalog(cfg, task="genre")) == 24


@pytest.mark.parametrize(
    "line, match",
    [
        ("Impressionism/x.jpg", r"style_train.csv:\d+: expected 'path,label'"),
        ("Impressionism/x.jpg,27", r"style_train.csv:\d+: label 27 is out of range"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, match):
    make_wikiart(tmp_path)
    target = tmp_path / "wikiart_csv" / "Style" / "style_train.csv"
    target.write_bytes(target.read_bytes() + line.encode() + b"\r\n")
    with pytest.raises(UserError, match=match):
        read_wikiart(_cfg(tmp_path))


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_catalog(_cfg(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="does not exist"):
        load_catalog(_cfg(tmp_path / "empty"))


def test_unknown_format_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="Unknown data.format"):
        load_catalog(DataConfig(format="csv", path=str(tmp_path)))


def test_labels_are_int64_arrays(tmp_path):
    make_wikiart(tmp_path)
    cat = read_wikiart(_cfg(tmp_path))
    assert all(a.dtype == np.int64 for a in cat.labels.values())
