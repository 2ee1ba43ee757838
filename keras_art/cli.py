"""Shared plumbing for the ``python -m keras_art.<command>`` entry points.

Every command is a thin ``main(argv=None) -> int`` around a library function of the
same name; this module turns user mistakes into one stderr line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping

from keras_art.errors import UserError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_config_flags(p: argparse.ArgumentParser, default_preset: str | None) -> None:
    """The flags every data-reading command shares: where data is and the config."""
    from keras_art.config import DATASET_FORMATS, PRESETS

    p.add_argument("--data", help="dataset root; omit to use the embedded sample")
    p.add_argument(
        "--format",
        choices=[f for f in DATASET_FORMATS if f != "sample"],
        help="dataset layout (default: inferred from --data)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=default_preset,
        help="recipe to start from"
        + ("" if default_preset else " (default: demo without --data, else default)"),
    )
    p.add_argument("--config", help="JSON or YAML file merged over the preset")
    add_set_flag(p, "override any config value, e.g. train.epochs=3")


# Flag (argparse dest) -> dotted config key, for every command that builds a
# `Config` from flags: a command reads the flags it has and skips the others. A flag
# given on the command line wins over ``--set``.
FLAG_KEYS = {
    "task": "task",
    "data": "data.path",
    "format": "data.format",
    "workdir": "workdir",
    "run_name": "run_name",
    "head": "model.head",
    "backbone": "model.backbone",
    "weights": "model.weights",
    "epochs": "train.epochs",
    "batch_size": "input.batch_size",
    "image_size": "augment.image_size",
    "mixed_precision": "train.mixed_precision",
    "strategy": "train.strategy",
    "seed": "train.seed",
    "report": "train.report",
    "init_from": "train.init_from",
}
# The search commands (``tuning.search``, ``tuning.bench tune``): ``--epochs`` is a
# trial's epochs, and the search settings have flags of their own.
TUNE_FLAG_KEYS = {
    **FLAG_KEYS,
    "epochs": "tune.epochs",
    "tuner": "tune.tuner",
    "max_trials": "tune.max_trials",
    "directory": "tune.directory",
    "project": "tune.project",
    "space": "tune.space",
    "stage": "tune.stage",
}


def config_from_flags(args, flag_keys: Mapping[str, str] = FLAG_KEYS):
    """The one way a command turns flags into a `Config`: preset -> ``--config`` ->
    ``--set`` -> explicit flags (``flag_keys``: flag -> dotted config key; a flag
    the command lacks or leaves unset is skipped) -> the task's defaults
    (`resolve_task_defaults`), validated. Without ``--preset``: demo on the embedded
    sample, default with ``--data``; without ``--format``, the layout is inferred
    from ``--data``. Returns the config and the dotted keys set explicitly."""
    import json

    from keras_art.config import build_config, resolve_task_defaults

    data, fmt = getattr(args, "data", None), getattr(args, "format", None)
    preset = getattr(args, "preset", None) or ("demo" if data is None else "default")
    overrides = list(getattr(args, "overrides", None) or [])
    for flag, key in flag_keys.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if data is not None and fmt is None:
        from keras_art.data.sources.infer_format import infer_format

        overrides.append(f"data.format={infer_format(data)}")
    cfg, explicit = build_config(preset, getattr(args, "config", None), overrides)
    if fmt is not None and cfg.data.path is None:
        # The dataset root may also come from --set data.path=... or --config.
        raise UserError("--format needs --data (the dataset root it describes).")
    return resolve_task_defaults(cfg, explicit).validate(), explicit


# The config words of library errors (`keras_art.errors.ParameterError` slots: the
# parameters of `keras_art.config.build_config` and the dotted config keys) -> the
# flags of `add_config_flags`. Commands add the keys their own flags set.
CONFIG_FLAGS = {
    "preset": "--preset",
    "config_file": "--config",
    "overrides": "--set",
    "data.path": "--data",
    "data.format": "--format",
}


def config_error_flags(
    parser: argparse.ArgumentParser, flag_keys: Mapping[str, str]
) -> dict[str, str]:
    """`run_command`'s ``flags`` for a command built on `config_from_flags`:
    `CONFIG_FLAGS` plus each ``flag_keys`` entry (dest -> config key) turned
    around, spelled as ``parser`` spells the flag (``report`` -> ``--no-report``);
    entries whose flag this parser lacks are skipped."""
    spelled = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    own = {key: spelled[dest] for dest, key in flag_keys.items() if dest in spelled}
    return {**CONFIG_FLAGS, **own}


def add_set_flag(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as a `UserError` (one line, exit 2)."""

    def error(self, message):  # noqa: D102 - argparse API
        raise UserError(f"{self.prog}: {message}. Run with --help for the options.")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; call before importing TF."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


LIBRARY_LOGGERS = ("keras_art", "tuning")  # the packages whose logs commands show


def show_library_logs(info_stream=None, name: str = "keras_art") -> None:
    """Print the ``name`` package's log records as plain lines: INFO on
    ``info_stream`` (default stdout: progress), WARNING and above on stderr. Library
    modules only log; commands decide where it shows. Calling it again (a second
    command in the same process) replaces the handlers, bound to the current
    streams."""
    root = logging.getLogger(name)
    for handler in getattr(root, "_keras_art_cli_handlers", ()):
        root.removeHandler(handler)
    out = logging.StreamHandler(info_stream or sys.stdout)
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root._keras_art_cli_handlers = (out, err)


def run_command(
    fn: Callable[[], int | None],
    info_stream=None,
    flags: Mapping[str, str] | None = None,
) -> int:
    """Run ``fn``; map `UserError` to exit 2 and a single line on stderr.

    ``flags`` maps the library's parameter names to this command's flags (``{"run_dir":
    "--run"}``): the one place a command translates an error's words. Library INFO
    logs (progress) show on ``info_stream`` (default stdout)."""
    libraries = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [lib.propagate for lib in libraries]
    for lib in libraries:
        show_library_logs(info_stream, lib.name)
        # Not also through the root logger, which some imported libraries
        # configure (every line would show twice); restored afterwards.
        lib.propagate = False
    try:
        code = fn()
    except UserError as exc:
        print(f"error: {exc.render(flags)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for lib, propagate in zip(libraries, saved, strict=True):
            lib.propagate = propagate
    return EXIT_OK if code is None else int(code)
