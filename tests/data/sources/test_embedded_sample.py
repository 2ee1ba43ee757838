"""The embedded sample: deterministic, in the exact WikiArt refined layout."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_art.data.sources import embedded_sample as sample
from keras_art.data.sources.embedded_sample import (
    GENRES,
    PAINTERS,
    STYLES,
    ensure_sample,
)
from keras_art.errors import UserError

N = 64


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return ensure_sample(str(tmp_path_factory.mktemp("cache")), num_images=N, seed=3)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _rows(path: Path) -> list[tuple[str, int]]:
    """The datasets.md parse rule: path before the first comma, label last token."""
    out = []
    for line in path.read_bytes().decode("utf-8").split("\n"):
        line = line.rstrip("\r")
        if not line or line.startswith("(Path"):
            continue
        out.append((line.split(",", 1)[0], int(line.rsplit(",", 1)[1])))
    return out


def test_same_seed_gives_identical_bytes(root, tmp_path):
    again = ensure_sample(str(tmp_path), num_images=N, seed=3)
    assert again != root
    assert _hashes(again) == _hashes(root)
    other = ensure_sample(str(tmp_path), num_images=N, seed=4)
    assert _hashes(other) != _hashes(root)


def test_second_call_reuses_the_folder(root, capsys):
    marker = root / "wikiart_csv" / "Style" / "style_class.txt"
    before = marker.stat().st_mtime_ns
    assert ensure_sample(str(root.parent), num_images=N, seed=3) == root
    assert marker.stat().st_mtime_ns == before
    assert capsys.readouterr().out == ""


def test_generation_prints_one_line(tmp_path, capsys):
    ensure_sample(str(tmp_path), num_images=32, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Generating the embedded sample (32 images) in ")


def test_half_written_cache_is_not_reused(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sample, "_write_label_files", crash)
    with pytest.raises(RuntimeError):
        ensure_sample(str(tmp_path), num_images=32, seed=0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    root = ensure_sample(str(tmp_path), num_images=32, seed=0)
    assert (root / "wikiart_csv" / "Artist" / "artist_val").is_file()


def test_layout_and_file_quirks(root):
    csv = root / "wikiart_csv"
    names = sorted(str(p.relative_to(csv)) for p in csv.rglob("*") if p.is_file())
    assert names == [
        "Artist/artist_class", "Artist/artist_train", "Artist/artist_val",
        "Genre/genre_class", "Genre/genre_train.csv", "Genre/genre_val.csv",
        "Style/style_class.txt", "Style/style_train.csv", "Style/style_val.csv",
    ]  # fmt: skip
    for rel in ("Style/style_train.csv", "Genre/genre_val.csv"):
        raw = (csv / rel).read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n") > 0
    for rel in ("Artist/artist_train", "Artist/artist_val"):
        raw = (csv / rel).read_bytes()
        assert b"\r" not in raw
        lines = raw.decode().split("\n")
        assert lines[0].rstrip(" ") == "(Path to image),, (Groundtruth class)"
        assert lines[1] == ""
        assert all(",," in line for line in lines[2:] if line)
    assert (
        (csv / "Artist/artist_val")
        .read_text()
        .startswith("(Path to image),, (Groundtruth class) \n")
    )
    style_class = (csv / "Style/style_class.txt").read_text().splitlines()
    assert style_class == [f"{i} {name}" for i, (name, _) in enumerate(STYLES)]
    assert (csv / "Genre/genre_class").read_text().splitlines()[0] == "0 " + GENRES[0]
    assert (csv / "Artist/artist_class").read_text().splitlines()[1] == "1 Claude_Monet"
    folders = sorted(p.name for p in (root / "wikiart").iterdir())
    assert "Art_Nouveau_Modern" in folders and "Art_Nouveau" not in folders
    assert "1 Art_Nouveau" in style_class


def test_rows_point_at_files_and_labels_match_folders(root):
    csv = root / "wikiart_csv"
    style = dict(
        _rows(csv / "Style/style_train.csv") + _rows(csv / "Style/style_val.csv")
    )
    images = {
        str(p.relative_to(root / "wikiart")) for p in (root / "wikiart").rglob("*.jpg")
    }
    assert set(style) == images and len(images) == N
    for path, label in style.items():
        assert path.split("/")[0] == STYLES[label][1]  # folder by index, not by name
        slug = path.split("/")[1].split("_")[0]
        painter = next(p for p in PAINTERS if p.slug == slug)
        assert painter.style == STYLES[label][0]
    assert any("\u00e3\u00a9" in path for path in images)  # the mojibake name


def test_all_three_tasks_label_every_image_with_a_75_25_split(root):
    csv = root / "wikiart_csv"
    lists = {
        task: (_rows(csv / tr), _rows(csv / va))
        for task, tr, va in [
            ("style", "Style/style_train.csv", "Style/style_val.csv"),
            ("genre", "Genre/genre_train.csv", "Genre/genre_val.csv"),
            ("artist", "Artist/artist_train", "Artist/artist_val"),
        ]
    }
    for _task, (train, val) in lists.items():
        assert len({p for p, _ in train} | {p for p, _ in val}) == N
    style_train, style_val = lists["style"]
    assert len(style_val) / N == pytest.approx(0.25, abs=0.05)
    assert {p for p, _ in lists["artist"][1]} == {p for p, _ in style_val}
    genre_train, genre_val = lists["genre"]
    assert len(genre_val) == len(set(genre_val)) + 1  # one duplicated row
    overlap = {p for p, _ in genre_train} & {p for p, _ in style_val}
    assert len(overlap) >= 1  # cross-task val/train overlap, as in the real lists


def test_imbalance_and_every_class_present(tmp_path):
    rows = sample._plan(720, 0)
    artists = np.bincount([r["artist"] for r in rows], minlength=len(PAINTERS))
    assert artists.sum() == 720
    assert 2.2 <= artists.max() / artists.min() <= 2.8
    assert (np.bincount([r["genre"] for r in rows]) > 0).all()
    assert (np.bincount([r["style"] for r in rows]) > 0).all()
    info = json.loads(
        (ensure_sample(str(tmp_path), 32, 1) / "sample_info.json").read_text()
    )
    assert sum(info["artists"].values()) == 32 and min(info["artists"].values()) >= 1


def test_sizes_and_aspect_ratios_vary(root):
    sizes = [Image.open(p).size for p in (root / "wikiart").rglob("*.jpg")]
    ratios = [w / h for w, h in sizes]
    assert min(min(s) for s in sizes) >= 96 and max(min(s) for s in sizes) <= 192
    assert min(ratios) < 0.85 and max(ratios) > 1.2
    assert len(set(sizes)) > N // 2
    assert all(Image.open(p).mode == "RGB" for p in (root / "wikiart").rglob("*.jpg"))


def test_too_few_images_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="sample_images"):
        ensure_sample(str(tmp_path), num_images=5)
