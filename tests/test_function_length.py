"""Functions that read in one breath: no function or method in the package, the
tuning tools or the data scripts runs over `MAX_LINES` lines (``def`` line to last
line, docstring and comments included). Over that, split it into named steps."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("keras_art", "tuning", "data_scripts")
MAX_LINES = 60


def long_functions(root: Path = REPO, max_lines: int = MAX_LINES) -> list[str]:
    """``file:line name (N lines)`` for every function over ``max_lines``."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > max_lines:
                        where = f"{path.relative_to(root)}:{node.lineno}"
                        found.append(f"{where} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_the_limit():
    found = long_functions()
    assert not found, (
        f"functions over {MAX_LINES} lines (split them into named steps): {found}"
    )


def test_the_guard_names_file_line_and_length(tmp_path):
    (tmp_path / "keras_art").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "keras_art" / "m.py").write_text(
        "def short():\n    return 1\n\n\ndef long():\n" + body
    )
    assert long_functions(tmp_path) == [
        f"keras_art/m.py:5 long ({MAX_LINES + 1} lines)"
    ]
