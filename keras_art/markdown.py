"""Markdown text: one escape for a cell and one table layout, shared by the
evaluation report (``report.md``), the search summary (``summary.md``) and the
dataset statistics, so a table looks and escapes the same wherever it is written."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_SPECIAL = re.compile(r"([\\`*|<])")


def md_escape(value: Any) -> str:
    """``value`` as one line of markdown text: whitespace runs become one space (a
    newline would end a table row) and ``\\ ` * | <`` are backslash-escaped (a bare
    ``|`` splits a cell, a bare ``<b>`` turns bold in a viewer)."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def markdown_table(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], *, name_columns: int = 1
) -> str:
    """A pipe table: the first ``name_columns`` columns left-aligned (names), the
    rest right-aligned (numbers); every cell escaped with `md_escape`. No trailing
    newline."""
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |"]
    align = ["---" if c < name_columns else "---:" for c in range(len(header))]
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
