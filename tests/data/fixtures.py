"""Tiny datasets in each real layout, quirks included (docs/datasets.md).

Every builder writes into a folder the test owns (``tmp_path``) and returns what the
test needs to check the reader against.
"""

from __future__ import annotations

import io
import json
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

STYLES = [
    "Abstract_Expressionism",
    "Action_painting",
    "Analytical_Cubism",
    "Art_Nouveau",
]
STYLE_FOLDERS = [
    "Abstract_Expressionism",
    "Action_painting",
    "Analytical_Cubism",
    "Art_Nouveau_Modern",  # the real release's folder for class "Art_Nouveau"
]
GENRES = ["abstract_painting", "cityscape", "portrait"]
ARTISTS = ["Albrecht_Durer", "Claude_Monet", "Vincent_van_Gogh"]


def jpeg_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A distinct tiny JPEG per seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_jpeg(path: Path, seed: int = 0, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(seed, size))
    return path


def make_wikiart(root: Path, *, ext_names: bool = False) -> dict:
    """The refined release, with its quirks.

    - style lists CRLF, ``style_class.txt``; genre/artist class files without ``.txt``
    - artist lists without extension, LF, header + blank line + ``path,,label``
    - style 3 "Art_Nouveau" lives in ``Art_Nouveau_Modern/``
    - a mojibake file name, a duplicated genre val row, one listed-but-missing file
    - cross-task overlap: one style-val image is in the genre train list, one
      artist-val image is in the style train list.

    ``ext_names=True`` uses the ``{task}_class.txt``/``{task}_train.csv`` variant.
    """
    images = root / "wikiart"
    csvs = root / "wikiart_csv"
    # 24 images: 6 per style; path = <folder>/<artist-slug>_<title>.jpg
    paths, style = [], []
    for i in range(24):
        cls = i % 4
        name = f"artist-{i % 3}_painting-{i}.jpg"
        if i == 5:
            name = "grã©goire-michonze_the-village.jpg"  # mojibake, as written
        rel = f"{STYLE_FOLDERS[cls]}/{name}"
        write_jpeg(images / rel, seed=i)
        paths.append(rel)
        style.append(cls)
    missing = f"{STYLE_FOLDERS[0]}/not-on-disk_painting.jpg"
    # style: val = every 4th image (ids 0,4,...), train = rest + the missing file
    style_val = [i for i in range(24) if i % 4 == 0]
    style_train = [i for i in range(24) if i % 4 != 0]
    genre = {i: i % 3 for i in range(24)}
    # genre lists 16 images; image 0 (style val) is in genre TRAIN (overlap)
    genre_train = [0, 1, 2, 3, 5, 6, 7, 9, 10, 11]
    genre_val = [13, 14, 15, 17, 18, 19]
    artist = {i: i % 3 for i in range(24)}
    # artist: image 1 (style train) is in artist VAL (overlap)
    artist_train = [2, 3, 6, 7, 10, 11, 20, 21]
    artist_val = [1, 22, 23]

    def lines(ids, labels, sep=","):
        return [f"{paths[i]}{sep}{labels[i]}" for i in ids]

    def write(task, kind, rows, newline, header=None):
        folder = csvs / task.capitalize()
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "class":
            name = f"{task}_class" + (".txt" if ext_names or task == "style" else "")
        else:
            name = f"{task}_{kind}"
            if ext_names or task != "artist":
                name += ".csv"
        body = ([header, ""] if header else []) + rows
        (folder / name).write_bytes(newline.join(body).encode("utf-8") + b"\n")

    write("style", "class", [f"{i} {n}" for i, n in enumerate(STYLES)], "\r\n")
    write(
        "style",
        "train",
        lines(style_train, style) + [f"{missing},0"],
        "\r\n",
    )
    write("style", "val", lines(style_val, style), "\r\n")
    write("genre", "class", [f"{i} {n}" for i, n in enumerate(GENRES)], "\r\n")
    write("genre", "train", lines(genre_train, genre), "\r\n")
    # one duplicated row, as in the real genre_val.csv
    write("genre", "val", lines(genre_val, genre) + lines([13], genre), "\r\n")
    write("artist", "class", [f"{i} {n}" for i, n in enumerate(ARTISTS)], "\n")
    header = "(Path to image),, (Groundtruth class) "
    write("artist", "train", lines(artist_train, artist, ",,"), "\n", header)
    write("artist", "val", lines(artist_val, artist, ",,"), "\n", header)
    return {
        "images": images,
        "labels": csvs,
        "paths": paths,
        "style": style,
        "genre": genre,
        "artist": artist,
        "missing": missing,
        "val": {"style": style_val, "genre": genre_val, "artist": artist_val},
        "train": {"style": style_train, "genre": genre_train, "artist": artist_train},
    }


def hf_metadata(names: dict[str, list[str]]) -> dict[bytes, bytes]:
    """Schema metadata as the Hugging Face ``datasets`` library writes it."""
    features = {
        "image": {"_type": "Image"},
        **{t: {"names": n, "_type": "ClassLabel"} for t, n in names.items()},
    }
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode()}


PARQUET_NAMES = {
    "artist": ["Unknown Artist", "Claude Monet", "Vincent van Gogh"],
    "genre": ["portrait", "landscape", "Unknown Genre"],
    "style": ["Impressionism", "Realism"],
}


def make_parquet(
    root: Path, *, shards: int = 2, rows: int = 6, metadata: bool = True
) -> dict:
    """``data/train-0000N-of-0000M.parquet`` shards with small row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    labels = {t: [] for t in PARQUET_NAMES}
    for s in range(shards):
        images, cols = [], {t: [] for t in PARQUET_NAMES}
        for r in range(rows):
            k = s * rows + r
            if k == 1:  # one PNG, to check the extension comes from the bytes
                buffer = io.BytesIO()
                Image.new("RGB", (8, 8), (k, 0, 0)).save(buffer, "PNG")
                payload = buffer.getvalue()
            else:
                payload = jpeg_bytes(k)
            images.append({"bytes": payload, "path": f"img{k}.jpg"})
            for t, names in PARQUET_NAMES.items():
                cols[t].append(k % len(names))
                labels[t].append(k % len(names))
        table = pa.table(
            {"image": images, **{t: pa.array(v, pa.int64()) for t, v in cols.items()}}
        )
        if metadata:
            table = table.replace_schema_metadata(hf_metadata(PARQUET_NAMES))
        pq.write_table(
            table, data / f"train-{s:05d}-of-{shards:05d}.parquet", row_group_size=2
        )
    return {"root": root, "labels": labels, "rows": shards * rows}


BEST_ARTISTS = [
    # (csv name, folder name, genre column, images)
    (
        "Albrecht Dürer",
        unicodedata.normalize("NFD", "Albrecht_Dürer"),
        "Northern Renaissance",
        3,
    ),
    ("Claude Monet", "Claude_Monet", "Impressionism", 4),
    ("Paul Gauguin", "Paul_Gauguin", "Symbolism,Post-Impressionism", 2),
    ("Jackson Pollock", "Jackson_Pollock", "Abstract Expressionism", 1),
]


def make_best_artworks(
    root: Path, *, images: bool = True, resized: bool = True
) -> dict:
    """artists.csv (with commas and quotes in bio) plus either/both image layouts.

    Dürer: NFC with umlaut in the CSV, NFD in the folder, and the resized copies are
    spelled without the umlaut ("Albrecht_Durer_1.jpg").
    """
    root.mkdir(parents=True, exist_ok=True)
    rows = ["id,name,years,genre,nationality,bio,wikipedia,paintings"]
    for i, (name, _, genre, n) in enumerate(BEST_ARTISTS):
        bio = '"Bio, with ""quotes"""'
        rows.append(f'{i},{name},1400 - 1500,"{genre}",German,{bio},x,{n}')
    (root / "artists.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    seed = 0
    for _, folder, _, n in BEST_ARTISTS:
        for k in range(1, n + 1):
            if images:
                write_jpeg(
                    root / "images" / "images" / folder / f"{folder}_{k}.jpg", seed
                )
            if resized:
                flat = "Albrecht_Durer" if "rer" in folder else folder
                write_jpeg(root / "resized" / "resized" / f"{flat}_{k}.jpg", seed)
            seed += 1
    return {"root": root, "total": sum(r[3] for r in BEST_ARTISTS)}


def make_folder(root: Path, *, splits: bool = False, per_class: int = 4) -> dict:
    """Class folders (optionally under train/ and valid/), mixed image suffixes."""
    classes = ["Baroque", "Cubism", "Rococo"]
    seed = 0
    parts = [("train", per_class), ("valid", 2)] if splits else [("", per_class)]
    for split, n in parts:
        for c in classes:
            for k in range(n):
                suffix = ".JPG" if k == 0 else ".jpeg" if k == 1 else ".jpg"
                base = root / split if split else root
                write_jpeg(base / c / f"{c.lower()}_{k}{suffix}", seed)
                seed += 1
    (root / "README.txt").write_text("not an image")
    return {"root": root, "classes": classes, "total": seed}
