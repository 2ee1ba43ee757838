"""``python -m data_scripts.make_tfrecords``: write a dataset as TFRecord shards.

    python -m data_scripts.make_tfrecords --task artist --out shards/sample
    python -m data_scripts.make_tfrecords --data /data/wikiart-release --task style \\
        --out /data/shards/style --shard-size 2048

The images are prepared exactly as a training run prepares them (validation, subsets,
splits), then each split is written as ``<split>-NNNNN-of-NNNNN.tfrecord`` with the
original encoded bytes, plus ``manifest.json``. Records are written in a seeded
shuffled order (``data.split_seed``): readers list files sorted by class, and a
TFRecord split is read as one stream through a shuffle buffer far smaller than the
split. Train from them with ``--set input.tfrecords=OUT`` and the same data
settings (the run checks the manifest's classes and splits against its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_scripts._common import add_data_flags, config_from_args
from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.config import TASK_CHOICES, Config
from keras_art.errors import UserError


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m data_scripts.make_tfrecords",
        description="Write a dataset's splits as TFRecord shards + manifest.json.",
    )
    add_data_flags(p)
    p.add_argument("--task", choices=TASK_CHOICES, default="artist")
    p.add_argument("--out", required=True, help="folder for the shards")
    p.add_argument("--shard-size", type=int, default=1024, help="records per shard")
    return p


def make_tfrecords(cfg: Config, out: str, shard_size: int = 1024) -> dict[str, Any]:
    """Prepare ``cfg``'s data and write one set of shards per split; return the
    manifest."""
    import numpy as np

    from keras_art.data.catalog.prepare import prepare_data
    from keras_art.data.pipeline.tfrecord import read_manifest, write_shards

    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1. Received: {shard_size}")
    prepared = prepare_data(cfg)
    for split in ("train", "val", "test"):
        idx = prepared.indices(split)
        if len(idx) == 0:
            continue
        idx = np.random.default_rng(cfg.data.split_seed % 2**32).permutation(idx)
        write_shards(
            [prepared.files[i] for i in idx],
            {t: prepared.labels[t][idx] for t in prepared.tasks},
            out,
            split,
            shard_size=shard_size,
            class_names={t: prepared.class_names[t] for t in prepared.tasks},
            source=cfg.data.format,
        )
    return read_manifest(out)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    cfg = config_from_args(args)
    manifest = make_tfrecords(cfg, args.out, args.shard_size)
    print(f"Wrote TFRecord shards to {Path(args.out)} (source: {manifest['source']})")
    print("| split | images | shards |")
    print("| --- | ---: | ---: |")
    for split, entry in manifest["splits"].items():
        print(f"| {split} | {entry['count']} | {len(entry['shards'])} |")
    classes = ", ".join(
        f"{t}: {len(manifest['class_names'][t])}" for t in manifest["tasks"]
    )
    print(f"classes: {classes}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
