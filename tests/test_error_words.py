"""Library errors speak in the library's words; commands show them as flags.

A notebook user calling a library function reads its parameters and config keys
(``data.path``, ``model``); the command that wraps it renders the same error with its
flags (``--data``, ``--model``), so the terminal line stays what it was.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from keras_art.errors import ParameterError, UserError

ROOT = Path(__file__).resolve().parents[1]


def _raised(call) -> UserError:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "--" not in message, message
    return info.value


def _train_flags() -> dict[str, str]:
    from keras_art.train import error_flags

    return error_flags()


# ----------------------------------------------------------- library-level words
def test_load_catalog_names_config_keys_and_train_shows_flags(tmp_path):
    from keras_art.config import DataConfig
    from keras_art.data.sources import load_catalog

    err = _raised(lambda: load_catalog(DataConfig(format="folder")))
    assert str(err).startswith("data.format folder needs data.path PATH")
    assert err.render(_train_flags()) == (
        "--format folder needs --data PATH (the dataset folder). Leave out --format "
        "and --data to use the embedded sample."
    )
    missing = tmp_path / "nope"
    err = _raised(lambda: load_catalog(DataConfig(format="folder", path=str(missing))))
    assert str(err) == f"data.path {missing}: no such file or folder. Check the path."
    assert err.render(_train_flags()).startswith(f"--data {missing}: no such file")


def test_folder_reader_names_task_and_data_path(tmp_path):
    from keras_art.data.sources.folder import read_folder_dir

    err = _raised(lambda: read_folder_dir(tmp_path, task="multi"))
    assert "so task must be one of" in str(err)
    assert "so --task must be one of" in err.render(_train_flags())
    err = _raised(lambda: read_folder_dir(tmp_path, task="style"))
    assert re.match(rf"data\.path {re.escape(str(tmp_path))}: no images", str(err))


def test_infer_format_names_data_path(tmp_path):
    from keras_art.data.sources.infer_format import infer_format

    err = _raised(lambda: infer_format(str(tmp_path / "nope")))
    assert err.params == ("data.path",)
    (tmp_path / "x.txt").write_text("x")
    err = _raised(lambda: infer_format(str(tmp_path / "x.txt")))
    assert "(and data.format if it cannot be guessed)" in str(err)


def test_config_words_overrides_and_config_file(tmp_path):
    from keras_art.config import Config, apply_overrides, load_config_file

    err = _raised(lambda: apply_overrides(Config(), ["train.epochs"]))
    assert str(err).startswith("overrides 'train.epochs': expected section.key=value")
    assert err.render(_train_flags()).startswith("--set 'train.epochs': expected")
    err = _raised(lambda: apply_overrides(Config(), ["train.epochz=1"]))
    assert str(err).startswith("overrides: unknown config key 'train.epochz'")
    assert err.render(_train_flags()).startswith("--set: unknown config key")
    missing = tmp_path / "c.yaml"
    err = _raised(lambda: load_config_file(missing))
    assert str(err).startswith(f"config_file {missing}: no such file")
    # A config file's own errors name the file, whose path may hold braces.
    odd = tmp_path / "{task}.yaml"
    odd.write_text("train: {epochz: 1}\n")
    err = _raised(lambda: load_config_file(odd))
    assert type(err) is UserError and str(err).startswith(f"{odd}: unknown")


def test_predict_backends_and_tuning_name_their_parameters(tmp_path):
    from keras_art.config import Config
    from keras_art.inference.backends import detect_model
    from keras_art.predict import FLAGS as PREDICT_FLAGS
    from tuning.search import error_flags as search_flags
    from tuning.space import resolve_space

    err = _raised(lambda: detect_model(tmp_path / "nope"))
    assert str(err).startswith(f"model {tmp_path / 'nope'}: no such file or folder")
    assert err.render(PREDICT_FLAGS).startswith(f"--model {tmp_path / 'nope'}:")
    cfg = Config()
    cfg.tune.space = str(tmp_path / "nope.json")
    err = _raised(lambda: resolve_space(cfg.tune, cfg))
    assert str(err).startswith("tune.space ")
    assert err.render(search_flags()).startswith("--space ")


def test_image_encoding_names_its_fields():
    from data_scripts.make_tfrecords import FLAGS
    from keras_art.data.pipeline.reencode import ImageEncoding

    err = _raised(lambda: ImageEncoding("short_side", 8).validate())
    assert str(err).startswith("short_side must be at least 16")
    assert err.render(FLAGS).startswith("--short-side must be at least 16")


def test_command_flag_maps_come_from_the_flags_themselves():
    """The train map is derived from its flag table: every config key a flag sets
    shows as that flag, spelled as the parser spells it."""
    flags = _train_flags()
    assert flags["data.path"] == "--data" and flags["data.format"] == "--format"
    assert flags["input.batch_size"] == "--batch-size"
    assert flags["augment.image_size"] == "--image-size"
    assert flags["train.report"] == "--no-report"
    assert flags["config_file"] == "--config" and flags["overrides"] == "--set"
    from tuning.search import error_flags

    assert error_flags()["tune.epochs"] == "--epochs"


# ------------------------------------------------------------------- the guard
# Command modules speak in flags; everything else is library code.
COMMANDS = {
    "keras_art/train.py",
    "keras_art/evaluate.py",
    "keras_art/compare.py",
    "keras_art/predict.py",
    "keras_art/bench.py",
    "keras_art/summary.py",
    "keras_art/cli.py",
    "keras_art/export/__main__.py",
    "tuning/search.py",
}
# A script's own argument handling (data_scripts) is command code too.
ARGUMENT_FUNCTIONS = {"main", "_main", "build_parser", "config_from_args"}
ARGUMENT_FUNCTIONS |= {"encoding_from_args", "add_arguments"}
# The benchmarks are the bench command's subcommands: each declares its flags and
# checks them (keras_art.bench dispatches), so their messages are command words.
BENCHMARK_SUBCOMMANDS = {
    "keras_art/benchmarks/pipeline.py",
    "keras_art/benchmarks/serve.py",
    "keras_art/benchmarks/train_step.py",
}
FLAG = re.compile(r"--[a-z]")
# "python -m MODULE --flag VALUE ...": a command line to run, fine in any context.
COMMAND_LINE = re.compile(r"python -m [\w.]+(?: (?:--[\w-]+|\{\}|[\w./]+))*")


def _text(node: ast.AST) -> str:
    """A message expression's literal text; ``{}`` for whatever is computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return "{}"


def _user_error_names(trees) -> set[str]:
    """UserError and every class that derives from it, by name."""
    names = {"UserError", "ParameterError"}
    classes = [
        n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
    ]
    grew = True
    while grew:
        grew = False
        for c in classes:
            bases = {getattr(b, "id", getattr(b, "attr", None)) for b in c.bases}
            if c.name not in names and bases & names:
                names.add(c.name)
                grew = True
    return names


def _library_modules() -> dict[str, ast.Module]:
    out = {}
    for package in ("keras_art", "tuning", "data_scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in COMMANDS:
                out[rel] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def flagged_messages(modules: dict[str, ast.Module], skip=frozenset()) -> list[str]:
    """``file:line message`` for each user-error message naming a ``--flag``."""
    names = _user_error_names(modules.values())
    found = []
    for rel, tree in modules.items():
        if rel in skip:
            continue
        exempt = set()
        if rel.startswith("data_scripts/"):
            for fn in ast.walk(tree):
                if isinstance(fn, ast.FunctionDef) and fn.name in ARGUMENT_FUNCTIONS:
                    exempt |= {id(n) for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in exempt:
                continue
            func = getattr(node.func, "id", getattr(node.func, "attr", None))
            if func not in names:
                continue
            text = " ".join(_text(a) for a in node.args)
            if FLAG.search(COMMAND_LINE.sub("", text)):
                found.append(f"{rel}:{node.lineno} {text}")
    return found


def test_no_library_error_names_a_flag():
    found = flagged_messages(_library_modules(), skip=BENCHMARK_SUBCOMMANDS)
    assert not found, (
        "Library errors name parameters or config keys, e.g. "
        'ParameterError("{data.path} ...: ..."); the command maps them to flags '
        "(run_command(..., flags=...)):\n" + "\n".join(found)
    )


def test_the_guard_catches_a_flag_and_allows_a_command_line():
    bad = ast.parse(
        "def f(x):\n"
        "    raise UserError(f'--data {x}: no such folder.')\n"
        "class MyError(ParameterError): pass\n"
        "def g(x):\n"
        "    raise MyError('Lower ' + '--batch-size.')\n"
    )
    fine = ast.parse(
        "def f(x, y):\n"
        "    raise ParameterError(\n"
        "        f'{{data.path}} {x}: export it with python -m keras_art.export '\n"
        "        f'--format tflite --out {y}, which writes both.'\n"
        "    )\n"
    )
    found = flagged_messages({"a.py": bad, "b.py": fine})
    assert [f.split()[0] for f in found] == ["a.py:2", "a.py:5"]


def test_parameter_error_keeps_unknown_braces_and_renders_known_slots():
    err = ParameterError('{run_dir} /x: pass {"a": 1} or {model.weights} none.')
    assert str(err) == 'run_dir /x: pass {"a": 1} or model.weights none.'
    assert err.render({"run_dir": "--run"}).startswith("--run /x")
