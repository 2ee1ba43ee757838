"""Flags and config building shared by the data scripts: the same as every
command's (`keras_art.cli.config_from_flags`), so a script run with a training run's
flags sees the data that run sees."""

from __future__ import annotations

from keras_art.cli import (
    CONFIG_FLAGS,
    ArgumentParser,
    add_config_flags,
    config_from_flags,
)
from keras_art.config import Config

# The library's config words -> the data scripts' shared flags (their errors' words).
DATA_FLAGS = {**CONFIG_FLAGS, "task": "--task"}


def add_data_flags(p: ArgumentParser) -> None:
    add_config_flags(p, default_preset=None)


def config_from_args(args) -> Config:
    """preset -> --config -> --set -> --task/--data/--format; validated."""
    return config_from_flags(args)[0]
