"""Flags and config building shared by the data scripts."""

from __future__ import annotations

from keras_art.cli import ArgumentParser
from keras_art.config import FORMATS, PRESETS, Config, build_config


def add_data_flags(p: ArgumentParser) -> None:
    p.add_argument("--data", help="dataset root; omit to use the embedded sample")
    p.add_argument(
        "--format",
        choices=[f for f in FORMATS if f != "sample"],
        help="dataset layout (default: inferred from --data)",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--config", help="JSON or YAML file merged over the preset")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. data.top_n=10",
    )


def config_from_args(args) -> Config:
    """preset -> --config -> --set, then --task/--data/--format; validated."""
    from keras_art.data.formats import infer_format

    cfg, _ = build_config(args.preset, args.config, args.overrides)
    cfg.task = args.task
    if args.data:
        cfg.data.path = args.data
        cfg.data.format = args.format or infer_format(args.data)
    elif args.format:
        cfg.data.format = args.format  # e.g. data.path given with --set
    return cfg.validate()
