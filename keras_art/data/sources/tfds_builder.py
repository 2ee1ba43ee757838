"""A TensorFlow Datasets builder for the WikiArt refined release, usable offline.

The builder reads the manual-download folder (``wikiart/`` images + ``wikiart_csv/``
label lists, ``docs/datasets.md`` section 1) and writes TFDS shards with splits
``train`` and ``validation``. Each example:

    image           the JPEG bytes as released (tfds.features.Image, not re-encoded)
    image/filename  "<StyleFolder>/<file>.jpg", as written in the lists
    artist, genre, style   int64 class index; -1 when the image is not in that task's
                    list *for this split* (``ClassLabel`` cannot say "missing")

An image that one task lists as train and another as val (the refined release has
100-200 such) appears in both splits, each time labelled only for the tasks that list
it there. Class names are stored in the dataset's ``metadata.json``
(``{"class_names": {task: [...]}}``).

Offline use never touches GCS::

    builder = make_builder(data_dir)
    builder.download_and_prepare(download_config=offline_download_config(manual_dir))

`load_tfds_catalog` (``--format tfds``) does that, then extracts the image bytes once
to ``<cache_dir>/tfds/`` because the rest of keras_art reads files.

The builder class only uses ``epath`` for file access: ``tfds.testing`` forbids
``os`` file calls inside a builder's module.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.data.sources.build_once import build_dir_once
from keras_art.errors import ParameterError, UserError
from keras_art.registry import TASKS

DATASET_NAME = "wikiart_refined"
SPLITS = {"train": "train", "validation": "val"}  # TFDS split -> catalog split
_LIST_DIRS = {"style": "Style", "genre": "Genre", "artist": "Artist"}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the WikiArt "refined" release (ArtGAN, https://github.com/cs-chan/ArtGAN):
the images archive (folder `wikiart/<Style>/*.jpg`) and the label lists
(`wikiart_csv/{Style,Genre,Artist}/...`). Put both in one folder and pass it as the
manual dir:

    <manual_dir>/wikiart/Impressionism/claude-monet_....jpg
    <manual_dir>/wikiart_csv/Style/style_class.txt, style_train.csv, style_val.csv
    <manual_dir>/wikiart_csv/Genre/genre_class, genre_train.csv, genre_val.csv
    <manual_dir>/wikiart_csv/Artist/artist_class, artist_train, artist_val

(keras_art's embedded sample has exactly this layout.)
"""

_BUILDER_CLASS = None


def disable_gcs() -> None:
    """Stop TFDS from probing gs://tfds-data (a ~60 s stall per request offline)."""
    import os

    os.environ.setdefault("NO_GCE_CHECK", "true")
    from tensorflow_datasets.core.utils import gcs_utils

    # Private flag, but the known workaround (TFDS issues 2761, 5719).
    gcs_utils._is_gcs_disabled = True


def offline_download_config(manual_dir: str | Path):
    """A `tfds.download.DownloadConfig` that reads ``manual_dir`` and never GCS."""
    import tensorflow_datasets as tfds

    return tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), try_download_gcs=False
    )


def builder_class():
    """The `tfds.core.GeneratorBasedBuilder` subclass (defined on first use, so that
    importing this module does not import TensorFlow Datasets)."""
    global _BUILDER_CLASS
    if _BUILDER_CLASS is None:
        _BUILDER_CLASS = _define_builder()
    return _BUILDER_CLASS


def make_builder(data_dir: str | Path):
    """A `WikiartRefined` builder writing to ``data_dir``, with GCS disabled."""
    disable_gcs()
    return builder_class()(data_dir=str(data_dir))


def __getattr__(name: str):
    if name == "WikiartRefined":
        return builder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define_builder():
    import tensorflow_datasets as tfds
    from etils import epath

    class WikiartRefined(tfds.core.GeneratorBasedBuilder):
        """WikiArt refined release (ArtGAN split): 27 styles, 10 genres, 23 artists."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "Labels for the three tasks; -1 = not listed."}
        MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

        def _info(self):
            label = {
                task: tfds.features.Scalar(
                    dtype=np.int64, doc=f"{task} class index, -1 = not labelled"
                )
                for task in TASKS
            }
            return tfds.core.DatasetInfo(
                builder=self,
                description="Paintings labelled by artist, genre and style.",
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(
                            shape=(None, None, 3), encoding_format="jpeg"
                        ),
                        "image/filename": tfds.features.Text(),
                        **label,
                    }
                ),
                supervised_keys=("image", "style"),
                homepage="https://github.com/cs-chan/ArtGAN",
                metadata=tfds.core.MetadataDict(),
            )

        def _split_generators(self, dl_manager):
            manual = epath.Path(dl_manager.manual_dir)
            labels_root = manual / "wikiart_csv"
            if not labels_root.exists():
                labels_root = manual
            images_root = manual / "wikiart"
            class_names, lists = read_label_lists(labels_root)
            self.info.metadata["class_names"] = class_names
            return {
                split: self._generate_examples(images_root, lists[split])
                for split in SPLITS
            }

        def _generate_examples(self, images_root, rows):
            for rel in sorted(rows):
                path = images_root / rel
                if not path.exists():  # listed but not shipped: skip, as readers do
                    continue
                example = {"image": path, "image/filename": rel}
                example.update({t: rows[rel].get(t, MISSING) for t in TASKS})
                yield rel, example

    return WikiartRefined


def read_label_lists(labels_root) -> tuple[dict, dict]:
    """Parse the refined release's label lists (epath/pathlib ``labels_root``).

    Returns ``(class_names, lists)``: ``class_names[task]`` in index order and
    ``lists[split][path][task] = label`` with splits ``train``/``validation``.
    Both file-name variants (``style_class.txt`` / ``genre_class``, ``.csv`` or
    none) are accepted; duplicated rows collapse.
    """
    class_names: dict[str, list[str]] = {}
    lists: dict[str, dict[str, dict[str, int]]] = {s: {} for s in SPLITS}
    for task, sub in _LIST_DIRS.items():
        folder = labels_root / sub
        class_file = _first_existing(folder, f"{task}_class", (".txt", ""))
        if class_file is None:
            continue
        class_names[task] = _parse_class_file(class_file)
        for split, stem in (("train", "train"), ("validation", "val")):
            rows = _first_existing(folder, f"{task}_{stem}", (".csv", ""))
            for path, label in _parse_rows(rows) if rows is not None else ():
                lists[split].setdefault(path, {})[task] = label
    if not class_names:
        raise UserError(
            f"{labels_root}: no WikiArt label lists (Style/style_class.txt, ...). "
            f"Pass the folder that holds wikiart/ and wikiart_csv/."
        )
    return class_names, lists


def _first_existing(folder, stem: str, suffixes: tuple[str, ...]):
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.exists():
            return path
    return None


def _parse_class_file(path) -> list[str]:
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            index, name = line.split(maxsplit=1)
            names[int(index)] = name
    return [names[i] for i in range(len(names))]


def _parse_rows(path):
    """datasets.md rule: path before the first comma, label = last token."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("(Path"):
            continue
        yield line.split(",", 1)[0], int(line.rsplit(",", 1)[1])


# --------------------------------------------------------------- --format tfds
def load_tfds_catalog(data_cfg) -> Catalog:
    """A `Catalog` for ``data.format`` ``tfds``.

    ``data_cfg.path`` is either the WikiArt manual-download folder (prepared once
    into ``<cache_dir>/tfds/<key>/data``) or a TFDS data dir this builder already
    prepared. The image bytes are extracted once to
    ``<cache_dir>/tfds/extracted/<key>/<split>/<StyleFolder>/<file>.jpg``.
    """
    if not data_cfg.path:
        raise ParameterError(
            "{data.format} tfds needs {data.path}: a manual dir or a TFDS data dir."
        )
    root = Path(data_cfg.path).expanduser()
    if not root.is_dir():
        raise ParameterError(
            f"{{data.path}} {data_cfg.path}: no such folder. Check the path."
        )
    disable_gcs()
    cache = Path(data_cfg.cache_dir) / "tfds"
    builder, version_dir = _prepared_builder(root, cache)
    meta_file = version_dir / "metadata.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    class_names = meta.get("class_names", {})

    # Keyed by the prepared data, so both ways of naming it share one extraction.
    out = cache / "extracted" / _key(version_dir.resolve())
    build_dir_once(
        out,
        lambda tmp: _extract(builder, tmp),
        message=f"Extracting the TFDS images once into {out}",
    )
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    tasks = [t for t in TASKS if t in class_names] or [
        t for t in TASKS if any(r[t] != MISSING for r in index)
    ]
    for task in tasks:  # a data dir without our metadata: numbered names
        if task not in class_names:
            top = max(r[task] for r in index)
            class_names[task] = [f"{task}_{i}" for i in range(top + 1)]
    return Catalog(
        files=[str(out / r["file"]) for r in index],
        labels={t: np.array([r[t] for r in index], dtype=np.int64) for t in tasks},
        class_names={t: list(class_names[t]) for t in tasks},
        source="tfds",
        official_split=np.array([r["split"] for r in index], dtype=object),
        notes=_catalog_notes(index, version_dir, out),
    )


def _prepared_builder(root: Path, cache: Path):
    """The TFDS builder of ``root`` and its version folder: a manual-download dir
    is prepared once under ``cache``, a prepared data dir is read as it is."""
    import tensorflow_datasets as tfds

    if (root / "wikiart_csv").is_dir() or (root / "Style").is_dir():
        builder = make_builder(cache / _key(root.resolve()) / "data")
        builder.download_and_prepare(download_config=offline_download_config(root))
        return builder, Path(builder.data_dir)
    version_dir = _find_prepared(root)
    return tfds.builder_from_directory(str(version_dir)), version_dir


def _catalog_notes(index: list[dict], version_dir: Path, out: Path) -> list[str]:
    """Where the examples came from, and how many images two splits share."""
    names = [r["filename"] for r in index]
    in_both = len(
        {n for n, r in zip(names, index, strict=True) if r["split"] == "train"}
        & {n for n, r in zip(names, index, strict=True) if r["split"] == "val"}
    )
    notes = [f"tfds: {len(index)} examples from {version_dir}, extracted to {out}."]
    if in_both:
        notes.append(
            f"tfds: {in_both} images are listed as train for one task and val for "
            f"another; they appear once per split."
        )
    return notes


def _key(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{path.name or 'root'}-{digest[:10]}"


def _find_prepared(root: Path) -> Path:
    """The version folder (holding dataset_info.json) under a TFDS data dir."""
    for depth in range(4):  # version dir, name/version, data_dir/name/version, +config
        pattern = "/".join(["*"] * depth + ["dataset_info.json"])
        found = sorted(root.glob(pattern))
        if found:
            return found[-1].parent  # highest version when several
    raise ParameterError(
        f"{{data.path}} {root}: neither a WikiArt folder (wikiart_csv/) nor a prepared "
        f"TFDS data dir (dataset_info.json). Pass one of those."
    )


def _extract(builder, out: Path) -> None:
    import tensorflow_datasets as tfds

    index: list[dict[str, Any]] = []
    for tfds_split, split in SPLITS.items():
        if tfds_split not in builder.info.splits:
            continue
        ds = builder.as_dataset(
            split=tfds_split,
            decoders={"image": tfds.decode.SkipDecoding()},
            shuffle_files=False,
        )
        for ex in tfds.as_numpy(ds):
            filename = ex["image/filename"].decode("utf-8")
            rel = Path(
                split, *[p for p in Path(filename).parts if p not in ("..", "/")]
            )
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(ex["image"])
            index.append(
                {
                    "file": str(rel),
                    "filename": filename,
                    "split": split,
                    **{t: int(ex[t]) for t in TASKS},
                }
            )
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")
