"""``python -m keras_art.demo``: the install hint without Gradio, and bad input as
one line with exit code 2 (no model is loaded here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_art.demo.__main__ import main

REPO = Path(__file__).resolve().parents[2]

# Whether importing keras_art and the demo's modules imported Gradio; then the
# command as if Gradio were not installed (a None entry makes its import fail).
WITHOUT_GRADIO = """
import sys
import keras_art, keras_art.inference, keras_art.demo.app, keras_art.demo.__main__
imported = "gradio" in sys.modules
sys.modules["gradio"] = None
from keras_art.demo.__main__ import main
print(main(["--model", "nowhere"]), imported)
"""


def test_gradio_is_imported_only_by_the_demo_which_says_how_to_install_it():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_GRADIO],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error: the demo needs the demo extra: pip install -e '.[demo]' "
        "(import of gradio halted; None in sys.modules)."
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/missing"], "--model {tmp}/missing: no such file or folder"),
        (["--model", "{tmp}"], "--model {tmp}: no models in it"),
        (["--model", "{tmp}", "--top-k", "0"], "--top-k 0: pass a positive integer"),
        (["--model", "{tmp}", "--port", "x"], "--port: invalid int value: 'x'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert message.format(tmp=tmp_path) in err[0]
