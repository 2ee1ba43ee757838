"""Dataset readers: every format name maps to a function returning a `Catalog`.

Each reader is called as ``reader(data_cfg, task)``: ``task`` is the run's task
(``"artist"``, ``"genre"``, ``"style"`` or ``"multi"``); the folder reader labels
that task, the WikiArt reader picks the matching official split, the others ignore
it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keras_art.data.catalog_type import Catalog
from keras_art.errors import ParameterError, UserError


def _read_sample(data_cfg, task: str | None = None) -> Catalog:
    import dataclasses

    from keras_art.data.sources.embedded_sample import ensure_sample
    from keras_art.data.sources.wikiart import read_wikiart

    root = ensure_sample(
        data_cfg.cache_dir, data_cfg.sample_images, data_cfg.sample_seed
    )
    local = dataclasses.replace(
        data_cfg, path=str(root), images_dir=None, labels_dir=None
    )
    catalog = read_wikiart(local, task=task)
    catalog.source = "sample"
    return catalog


def _read_wikiart(data_cfg, task=None) -> Catalog:
    from keras_art.data.sources.wikiart import read_wikiart

    return read_wikiart(data_cfg, task=task)


def _read_parquet(data_cfg, task=None) -> Catalog:
    from keras_art.data.sources.parquet import read_parquet

    return read_parquet(data_cfg, task=task)


def _read_best_artworks(data_cfg, task=None) -> Catalog:
    from keras_art.data.sources.best_artworks import read_best_artworks

    return read_best_artworks(data_cfg, task=task)


def _read_folder(data_cfg, task=None) -> Catalog:
    from keras_art.data.sources.folder import read_folder

    return read_folder(data_cfg, task=task or "style")


def _read_tfds(data_cfg, task=None) -> Catalog:
    from keras_art.data.sources.tfds_builder import load_tfds_catalog

    return load_tfds_catalog(data_cfg)


DATASET_READERS: dict[str, Callable[..., Catalog]] = {
    "sample": _read_sample,
    "wikiart": _read_wikiart,
    "parquet": _read_parquet,
    "best-artworks": _read_best_artworks,
    "folder": _read_folder,
    "tfds": _read_tfds,
}


def load_catalog(data_cfg, task: str | None = None) -> Catalog:
    """Read the dataset ``data_cfg`` describes; ``task`` is the run's ``task``.

    ``None`` reads every task the source has (the folder reader then labels
    ``style``) with the multi-task official split.
    """
    fmt = data_cfg.format
    if fmt not in DATASET_READERS:
        raise UserError(
            f"Unknown data.format {fmt!r}. Choose one of: {', '.join(DATASET_READERS)}."
        )
    if fmt != "sample":
        overrides = fmt == "wikiart" and data_cfg.images_dir and data_cfg.labels_dir
        if not data_cfg.path and not overrides:
            raise ParameterError(
                f"{{data.format}} {fmt} needs {{data.path}} PATH (the dataset "
                f"folder). Leave out {{data.format}} and {{data.path}} to use the "
                f"embedded sample."
            )
        if data_cfg.path and not Path(data_cfg.path).expanduser().exists():
            raise ParameterError(
                f"{{data.path}} {data_cfg.path}: no such file or folder. Check the "
                f"path."
            )
    return DATASET_READERS[fmt](data_cfg, task=task)
