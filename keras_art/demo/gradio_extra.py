"""The demo's optional dependency, Gradio (the ``demo`` extra), and where the demo
listens by default. Stdlib only at import: the command reads these before
TensorFlow loads, so a missing extra is reported at once."""

from __future__ import annotations

from keras_art.errors import UserError

DEFAULT_HOST = "127.0.0.1"  # this machine only; another host is the user's choice
DEFAULT_PORT = 7860  # Gradio's own default
INSTALL_HINT = "the demo needs the demo extra: pip install -e '.[demo]'"


def require_gradio():
    """The ``gradio`` module, or `UserError` saying how to install the extra."""
    try:
        import gradio
    except ImportError as exc:
        raise UserError(f"{INSTALL_HINT} ({exc}).") from None
    return gradio
