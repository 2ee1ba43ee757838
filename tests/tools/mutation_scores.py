"""Mutation score per module from ``mutmut results --all true`` (read on stdin).

A developer tool, not a test: mutmut lists each mutant as ``module.x_func__mutmut_N:
status``; this groups them by module and prints killed / total, so the README's one
command gives the number the project tracks (at least 80% killed on each module).

    mutmut run; mutmut results --all true | python -m tests.tools.mutation_scores
"""

import collections
import re
import sys

_MUTANT = re.compile(r"^\s*(?P<name>\S+?)__mutmut_\d+:\s*(?P<status>[\w ]+?)\s*$")


def scores(lines):
    """{module: Counter(status -> count)} for mutmut's result lines."""
    by_module = collections.defaultdict(collections.Counter)
    for line in lines:
        match = _MUTANT.match(line)
        if not match:
            continue
        # mutmut names a mutant module.x_function or module.xǁClassǁmethod
        module = re.split(r"\.x[_ǁ]", match["name"], maxsplit=1)[0]
        by_module[module][match["status"]] += 1
    return by_module


def main(lines=None):
    by_module = scores(sys.stdin if lines is None else lines)
    if not by_module:
        print("no mutants on stdin: run `mutmut run` first", file=sys.stderr)
        return 2
    width = max(len(m) for m in by_module)
    for module in sorted(by_module):
        counts = by_module[module]
        total = sum(counts.values())
        others = ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed"
        )
        print(
            f"{module:<{width}}  {counts['killed']:>4}/{total:<4} "
            f"{100 * counts['killed'] / total:5.1f}% killed  ({others or 'none left'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
