"""Flags and config building shared by the data scripts."""

from __future__ import annotations

from keras_art.cli import CONFIG_FLAGS, ArgumentParser, add_config_flags
from keras_art.config import Config, build_config

# The library's config words -> the data scripts' shared flags (their errors' words).
DATA_FLAGS = {**CONFIG_FLAGS, "task": "--task"}


def add_data_flags(p: ArgumentParser) -> None:
    add_config_flags(p, default_preset="default")


def config_from_args(args) -> Config:
    """preset -> --config -> --set, then --task/--data/--format; validated."""
    from keras_art.data.sources.infer_format import infer_format

    cfg, _ = build_config(args.preset, args.config, args.overrides)
    if args.task:  # else the preset's or --config's task (default artist)
        cfg.task = args.task
    if args.data:
        cfg.data.path = args.data
        cfg.data.format = args.format or infer_format(args.data)
    elif args.format:
        cfg.data.format = args.format  # e.g. data.path given with --set
    return cfg.validate()
