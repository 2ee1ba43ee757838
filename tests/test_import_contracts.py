"""The import graph is the architecture: `lint-imports` checks the contracts of
``setup.cfg``'s ``[importlinter]`` sections (layers, the Catalog leaf, keras_art never
importing tuning or data_scripts), imports inside functions included.

The next import against the flow fails here, with import-linter's report of the
offending chain as the message.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ``lint-imports setup.cfg``, in a child run from the checkout's root so that the
# packages analysed are the checkout's (the cwd leads sys.path for ``-c``).
LINT = (
    "from importlinter.cli import lint_imports; "
    "raise SystemExit(lint_imports('setup.cfg', no_cache=True, no_logo=True))"
)


def test_import_contracts_kept():
    done = subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "0 broken" in report
    assert "keras_art never imports tuning or data_scripts KEPT" in report
