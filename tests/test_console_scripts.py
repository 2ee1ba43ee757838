"""Every command has a ``keras-art-*`` console script, and every script's target is a
command's ``main`` that answers ``--help`` (no editable reinstall needed: the targets
are resolved from setup.cfg and called in this process)."""

import configparser
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Commands reached through another command, so without a script of their own.
ALIASES = {"keras_art.benchmarks.train_step"}  # = keras-art-bench train-step


def console_scripts() -> dict[str, str]:
    """``{script name: "module:function"}`` from setup.cfg's entry points."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = {}
    for line in lines:
        name, _, target = line.partition("=")
        scripts[name.strip()] = target.strip()
    return scripts


def command_modules() -> set[str]:
    """Modules that run as ``python -m ...`` (they end in a ``__main__`` guard)."""
    found = set()
    for package in ("keras_art", "tuning", "data_scripts"):
        for path in (REPO / package).rglob("*.py"):
            if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
                parts = path.relative_to(REPO).with_suffix("").parts
                found.add(".".join(parts))
    return found


SCRIPTS = console_scripts()


def test_every_command_has_a_console_script():
    targets = {target.partition(":")[0] for target in SCRIPTS.values()}
    assert command_modules() - ALIASES == targets
    assert all(name.startswith("keras-art-") for name in SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_target_answers_help(name, capsys):
    module_name, _, function = SCRIPTS[name].partition(":")
    main = getattr(importlib.import_module(module_name), function)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out
