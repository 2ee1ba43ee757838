"""``python -m tuning.bench tune``: one search trial on cached features vs on images.

    python -m tuning.bench tune --data /work/shared/data/wikiart-style-sample \
        --image-size 224 --epochs 2 --json /tmp/tune.json

The benchmark of `tuning`, so it lives here: keras_art never imports `tuning`.
It runs in keras_art's bench frame (`keras_art.bench.main` with this module as its
one benchmark: the same ``--json``, summary and one-line errors).

For each head, the same ``--stage head`` trial (frozen backbone, same config, same
epochs) is trained twice through `tuning.hypermodel.PaintingHyperModel`: on the
feature cache every trial of a search shares, and on images (the backbone runs every
step and every validation). Reported per head: trial seconds both ways and their
ratio (the issue's target: >= 10 x for gap and spp), the steady epoch time both ways
(from the second epoch: no tracing), and once, what the cache itself costs and after
how many trials it has paid for itself.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

from keras_art.bench import main as bench_main
from keras_art.benchmarks import progress
from keras_art.registry import HEADS

NAME = "tune"
HELP = "a search trial (--stage head) on cached features vs on images, per head"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from keras_art.cli import add_config_flags

    # The same --data/--format/--preset/--config/--set as every command.
    add_config_flags(parser, default_preset=None)
    parser.add_argument("--task", default="style")
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)


def run(args: argparse.Namespace) -> dict:
    from keras_art.runtime_info import peak_rss_mb, versions

    base = _base_config(args)
    return {
        "benchmark": NAME,
        "data": args.data or "embedded sample",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        **bench_tune(base, args.heads),
        "peak_rss_mb": peak_rss_mb(),
        "versions": versions(),
    }


def bench_tune(base, heads) -> dict:
    """Time one trial per head on the cache and on images (see module doc)."""
    import keras_tuner
    import tensorflow as tf

    from tuning.hypermodel import PaintingHyperModel, TrialData, prepare_trial_data

    strategy = tf.distribute.get_strategy()
    progress("preparing data and caching the frozen backbone's features")
    start = time.time()
    cached = prepare_trial_data(base, strategy, cache_features=True)
    prepare_and_cache_s = time.time() - start
    images = TrialData(cached.prepared, cached.datasets, cached.backbone_weights)
    per_head = {}
    for head in heads:
        space = {"head": {"fixed": head}}
        hp = keras_tuner.HyperParameters()
        times = {}
        for name, data in (("cached", cached), ("images", images)):
            model_maker = PaintingHyperModel(base, space, data, strategy)
            model = model_maker.build(hp)
            progress(f"{head}: one trial on {name}")
            start = time.time()
            metrics = model_maker.fit(hp, model, epochs=base.tune.epochs)
            times[name] = {
                "trial_s": time.time() - start,
                "val_f1": metrics["val_f1"],
                "epoch_s": model_maker.last_epoch_seconds,
            }
        per_head[head] = _compare(times)
    n = len(cached.prepared.indices("train")) + len(cached.prepared.indices("val"))
    return {
        "train_plus_val_images": n,
        "prepare_and_cache_s": round(prepare_and_cache_s, 2),
        "heads": per_head,
    }


def _compare(times: dict) -> dict:
    cached, images = times["cached"], times["images"]
    steady = [
        (c, i)
        for c, i in zip(cached["epoch_s"][1:], images["epoch_s"][1:], strict=True)
    ]
    epoch_cached = min(c for c, _ in steady) if steady else None
    epoch_images = min(i for _, i in steady) if steady else None
    saved = images["trial_s"] - cached["trial_s"]
    return {
        "trial_s_images": round(images["trial_s"], 2),
        "trial_s_cached": round(cached["trial_s"], 3),
        "trial_speedup": round(images["trial_s"] / cached["trial_s"], 1),
        "steady_epoch_s_images": epoch_images and round(epoch_images, 3),
        "steady_epoch_s_cached": epoch_cached and round(epoch_cached, 4),
        "steady_epoch_speedup": epoch_cached and round(epoch_images / epoch_cached, 1),
        "seconds_saved_per_trial": round(saved, 2),
        "val_f1_cached": round(cached["val_f1"], 4),
        "val_f1_images": round(images["val_f1"], 4),
    }


def _base_config(args):
    from keras_art.cli import TUNE_FLAG_KEYS, config_from_flags

    # What this benchmark times: a --stage head trial from ImageNet weights, run to
    # its last epoch; after --set, so that they hold whatever else is set.
    fixed = [
        "tune.stage=head",
        "train.early_stopping_patience=0",
        "model.weights=imagenet",
    ]
    flags = copy.copy(args)
    flags.overrides = [*args.overrides, *fixed]
    cfg, _ = config_from_flags(flags, TUNE_FLAG_KEYS)
    if args.data and cfg.data.format != "sample":
        # Offline there are no ImageNet weights; the timing does not depend on them.
        cfg.model.weights = _weights_or_none(cfg)
    return copy.deepcopy(cfg.validate())


def _weights_or_none(cfg) -> str:
    from keras_art.errors import UserError
    from keras_art.models.backbones import resolve_weights

    try:
        resolve_weights(cfg.model.backbone, cfg.model.weights, on_missing="error")
    except UserError:
        progress("ImageNet weights unavailable offline: timing with random weights")
        return "none"
    return cfg.model.weights


def benchmarks() -> dict:
    """This module's benchmarks in `keras_art.bench`'s table form."""
    return {NAME: (add_arguments, run, HELP)}


def main(argv: list[str] | None = None) -> int:
    """``python -m tuning.bench tune [--json OUT] ...``."""
    return bench_main(argv, benchmarks(), "python -m tuning.bench")


if __name__ == "__main__":
    sys.exit(main())
