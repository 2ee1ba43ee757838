"""Facts spelled once: the monitored metric and the default top-k live in
`keras_art.registry`; code elsewhere names the constants, never the values."""

import ast
from pathlib import Path

from keras_art.registry import DEFAULT_TOP_K, MONITOR_METRIC

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("keras_art", "tuning", "data_scripts")


def _modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path != REPO / "keras_art" / "registry.py":
                yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_monitor_metric_is_spelled_only_in_the_registry():
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == MONITOR_METRIC
    ]
    assert not found, f"use registry.MONITOR_METRIC instead of the literal: {found}"


def test_top_k_defaults_name_the_registry_constant():
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defaults = _defaults_of(node.args, "top_k")
            elif _is_add_argument(node, "--top-k"):
                defaults = [k.value for k in node.keywords if k.arg == "default"]
            else:
                continue
            for default in defaults:
                constants = [
                    n for n in ast.walk(default) if isinstance(n, ast.Constant)
                ]
                if any(n.value == DEFAULT_TOP_K for n in constants):
                    found.append(f"{path.relative_to(REPO)}:{default.lineno}")
    assert not found, f"use registry.DEFAULT_TOP_K instead of the literal: {found}"


def _is_add_argument(node, flag: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        and any(isinstance(a, ast.Constant) and a.value == flag for a in node.args)
    )


def _defaults_of(args: ast.arguments, name: str) -> list:
    """The default expression(s) of parameter ``name`` (positional or keyword)."""
    positional = args.posonlyargs + args.args
    pairs = list(
        zip(
            positional[len(positional) - len(args.defaults) :],
            args.defaults,
            strict=True,
        )
    )
    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    return [d for a, d in pairs if a.arg == name and d is not None]
