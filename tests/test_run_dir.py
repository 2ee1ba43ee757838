"""`keras_art.run_dir` owns the run layout: the guard that keeps it the one owner,
and `RunDir`'s paths, readers and atomic writers."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from keras_art import run_dir as R
from keras_art.atomic_files import atomic_dir, atomic_path, is_leftover
from keras_art.errors import ParameterError, UserError
from keras_art.run_dir import RunDir, find_resumable, open_finished

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("keras_art", "tuning", "data_scripts")
OWNER = ROOT / "keras_art" / "run_dir.py"
# Same name, another file: the name the SavedModel's metadata had before it became
# assets.extra/export_metadata.json (its own schema, see issue #20 section 6), still
# read from old exports; not the run's model record.
ALLOWED = {("keras_art/models/exported.py", R.MODEL_RECORD_FILE)}


# ------------------------------------------------------------------ the guard
def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are module, class or function docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                out.add(id(body[0].value))
    return out


def _is_path_part(node: ast.Constant, parents: dict[int, ast.AST]) -> bool:
    """``x / "logs"``, ``"logs" / x`` or an argument of ``os.path.join``."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div):
        return True
    return (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Attribute)
        and parent.func.attr == "join"
        and node in parent.args
    )


def run_file_literals(path: Path, source: str | None = None) -> list[str]:
    """``line: literal`` for each run-directory name spelled out in ``path``'s code.

    The rule: a file name of the layout (``config.json``, ``best.keras``, ...)
    anywhere inside a string constant that is code (f-string parts included:
    messages name files through the constants too); a folder name of the layout
    (``checkpoints``, ``logs``, ``eval``) as a path part (``run / "logs"``), since
    those words are common elsewhere. Docstrings and comments may name them."""
    tree = ast.parse(source if source is not None else path.read_text("utf-8"))
    docstrings = _docstrings(tree)
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    files = re.compile(
        r"(?<![\w.])(" + "|".join(map(re.escape, R.FILE_NAMES)) + r")(?![\w])"
    )
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in docstrings:
            continue
        names = set(files.findall(node.value))
        if node.value in R.DIR_NAMES and _is_path_part(node, parents):
            names.add(node.value)
        found += [f"{node.lineno}: {name}" for name in sorted(names)]
    return found


def test_run_file_names_are_spelled_only_in_run_dir():
    offenders = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == OWNER:
                continue
            rel = path.relative_to(ROOT).as_posix()
            for hit in run_file_literals(path):
                if (rel, hit.split(": ", 1)[1]) not in ALLOWED:
                    offenders.append(f"{rel}:{hit}")
    assert not offenders, (
        "run-directory names belong to keras_art/run_dir.py; use its constants or "
        "RunDir:\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    "code",
    [
        'p = run / "summary.json"',
        'msg = f"no config.json in {run}"',
        'open(os.path.join(run, "checkpoints"))',
        'p = run / "logs"',
        'names = ["x", "best.keras"]',
    ],
)
def test_the_guard_catches_literals_in_code(code):
    assert run_file_literals(Path("x.py"), code)


@pytest.mark.parametrize(
    "code",
    [
        '"""Writes ``summary.json`` and ``best.keras``."""',
        "def f():\n    '''Reads config.json.'''\n    return 1",
        "x = 1  # history.csv",
        'out["eval"] = 1',
        'p = run / "model.jsonl"',
        'p = "my_config.json"',
    ],
)
def test_the_guard_ignores_docstrings_comments_and_other_names(code):
    assert run_file_literals(Path("x.py"), code) == []


# -------------------------------------------------------------------- RunDir
def test_paths_are_the_layout(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.config == tmp_path / "r" / "config.json"
    assert run.classes.name == "classes.json"
    assert run.splits.name == "splits.csv"
    assert run.data_report.name == "data_report.json"
    assert run.model_record.name == "model.json"
    assert run.warm_start.name == "warm_start.json"
    assert run.checkpoints.name == "checkpoints"
    assert run.best_model.name == "best.keras"
    assert run.history.name == "history.csv"
    assert run.logs.name == "logs"
    assert run.summary.name == "summary.json"
    assert run.eval_dir("test") == tmp_path / "r" / "eval" / "test"
    assert run.eval_dir("a b/c").name == "a_b_c"
    # Path-like, and a RunDir of a RunDir is the same run.
    assert Path(run) == tmp_path / "r" and str(run) == str(tmp_path / "r")
    assert RunDir(run) == run and RunDir(str(tmp_path / "r")) == run


def test_eval_files_and_a_group_of_repeats(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.eval_metrics("test") == tmp_path / "r" / "eval" / "test" / "metrics.json"
    assert run.eval_predictions("val").name == "predictions.npz"
    group = R.GroupDir(tmp_path / "g")
    assert not group.is_group() and group.manifest.name == "group.json"
    with pytest.raises(ParameterError, match="^group_dir .*g: no group.json"):
        group.read_manifest()
    group.path.mkdir()
    group.write_manifest({"seeds": [2, 0]})
    assert group.is_group() and group.run(2) == RunDir(tmp_path / "g" / "seed-2")
    assert [r.name for r in group.runs()] == ["seed-2", "seed-0"]
    # A group passed where one run is expected says what it is.
    with pytest.raises(ParameterError, match="a group of repeats .*seed-0"):
        open_finished(group.path)
    group.manifest.write_text('{"seeds": "x"}')
    with pytest.raises(ParameterError, match="group.json is not readable"):
        group.read_manifest()


def test_writers_and_readers_round_trip(tmp_path):
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.write_config('{"task": "artist"}')
    run.write_classes({"artist": ["Monet", "Klimt"]})
    odd = "caf\udce9.jpg"  # an undecodable byte in a path survives both ways
    run.write_splits(["artist"], [("a.jpg", ["Monet"], "train"), (odd, [""], "test")])
    run.write_data_report({"n": np.int64(2)})
    run.write_model_record({"tasks": ["artist"]})
    run.write_warm_start({"loaded": ["backbone/conv1_conv"]})
    assert not run.is_finished() and run.is_run()
    run.write_summary({"status": "complete"})
    assert run.is_finished()
    assert run.read_config() == {"task": "artist"}
    assert run.config.read_text().endswith("}\n")
    assert run.read_classes() == {"artist": ["Monet", "Klimt"]}
    assert run.read_splits() == [
        {"file": "a.jpg", "artist": "Monet", "split": "train"},
        {"file": odd, "artist": "", "split": "test"},
    ]
    assert run.read_data_report() == {"n": 2}
    assert run.read_model_record() == {"tasks": ["artist"]}
    assert run.read_warm_start() == {"loaded": ["backbone/conv1_conv"]}
    assert run.read_summary() == {"status": "complete"}
    assert not [p for p in run.path.iterdir() if p.name.startswith(".")]


def test_missing_or_broken_files_name_run_dir(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(ParameterError) as missing:
        run.read_splits()
    assert missing.value.params == ("run_dir",)
    assert str(missing.value).startswith(f"run_dir {tmp_path}: no splits.csv")
    assert missing.value.render({"run_dir": "--run"}).startswith("--run ")
    run.summary.write_text("{not json")
    with pytest.raises(ParameterError, match="run_dir .*summary.json is not readable"):
        run.read_summary()


def test_open_finished_says_what_is_missing(tmp_path):
    with pytest.raises(ParameterError, match="^run_dir .*nope: no such folder"):
        open_finished(tmp_path / "nope")
    with pytest.raises(ParameterError, match="not a run directory .no config.json"):
        open_finished(tmp_path)
    RunDir(tmp_path).write_config("{}")
    with pytest.raises(ParameterError, match="unfinished .no summary.json.*--resume"):
        open_finished(tmp_path)
    RunDir(tmp_path).write_summary({})
    assert open_finished(tmp_path) == RunDir(tmp_path)


def test_find_resumable(tmp_path):
    with pytest.raises(ParameterError, match="^run_dir: no unfinished run"):
        find_resumable("latest", tmp_path)
    done, open_ = RunDir(tmp_path / "done"), RunDir(tmp_path / "open")
    for run in (done, open_):
        run.path.mkdir()
        run.write_config("{}")
    done.write_summary({})
    assert find_resumable("latest", tmp_path) == open_
    assert find_resumable(str(open_), "unused") == open_
    with pytest.raises(ParameterError, match="already finished") as finished:
        find_resumable(str(done), tmp_path)
    assert finished.value.render({"run_dir": "--resume"}).startswith("--resume ")


class _Var:
    def __init__(self, shape):
        self.shape, self.value = shape, None

    def assign(self, value):
        self.value = value


def test_checkpoint_format_round_trip(tmp_path):
    directory = tmp_path / "checkpoints"
    model, opt = [np.ones((2, 3)), np.arange(4)], [np.zeros(1)]
    R.write_checkpoint(directory, 1, model, opt, {"epoch": 1})
    R.write_checkpoint(directory, 2, model, opt, {"epoch": 2})
    again = R.write_checkpoint(directory, 2, model, opt, {"epoch": 2, "again": True})
    (directory / "epoch_0003").mkdir()  # no state.json: not complete
    assert [n for n, _ in R.completed_checkpoints(directory)] == [1, 2]
    assert R.latest_checkpoint(directory) == again == directory / "epoch_0002"
    assert R.read_checkpoint_state(again) == {"epoch": 2, "again": True}
    variables = [_Var((2, 3)), _Var((4,))]
    R.restore_checkpoint_arrays(variables, again, "model")
    assert np.array_equal(variables[1].value, np.arange(4))
    with pytest.raises(UserError, match="does not match this optimizer"):
        R.restore_checkpoint_arrays(variables, again, "optimizer")
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------- atomic_dir / path
def test_atomic_dir_replaces_whole_or_keeps_the_old(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("1")
        assert not target.exists() and is_leftover(staging)
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "a.txt").write_text("2")
        raise RuntimeError("stopped")
    assert (target / "a.txt").read_text() == "1"
    with atomic_dir(target) as staging:
        (staging / "b.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_atomic_dir_without_replace_refuses_an_existing_folder(tmp_path):
    target = tmp_path / "v1"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError), atomic_dir(target, replace=False) as staging:
        (staging / "new").write_text("y")
    assert [p.name for p in target.iterdir()] == ["keep"]
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_atomic_path_keeps_the_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "m.keras"
    with atomic_path(target, suffix=".keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("stopped")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_config_json_is_what_train_writes(tmp_path):
    """The constants are the layout train writes (config.json is a Config)."""
    from keras_art.config import Config, config_from_dict

    run = RunDir(tmp_path)
    run.write_config(Config().to_json())
    assert config_from_dict(run.read_config()) == Config()
    assert json.loads(run.config.read_text())["task"] == Config().task
