"""The exceptions that mean "the user gave us something we cannot use".

Library functions speak in their own parameters' words: a notebook user calling
``evaluate(run_dir=...)`` reads ``run_dir``, never ``--run``. A `ParameterError` keeps
its parameter names as ``{name}`` slots, so each command renders the same error with
its flags (`keras_art.cli.run_command`'s ``flags``) and the terminal still shows one
line naming the flag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


class UserError(Exception):
    """Bad usage or bad input: printed as one line on stderr, exit code 2.

    The message names the problem and the fix, e.g.
    ``UserError("run_dir /x has no config.json: pass a finished run directory.")``.
    """

    def render(self, flags: Mapping[str, str] | None = None) -> str:
        """The message for a command; plain `UserError`s have no parameter slots."""
        return str(self)


class ParameterError(UserError):
    """A bad value for one or more of a library function's parameters.

    ``message`` writes each parameter as ``{name}``: ``str(error)`` says ``name``,
    ``error.render({"name": "--flag"})`` says ``--flag``. Literal braces in values
    that do not name a slot are left as they are.

        raise ParameterError("{run_dir} {value}: no such folder.", run_dir=...)
    """

    def __init__(self, message: str):
        self.template = message
        super().__init__(self.render())

    def render(self, flags: Mapping[str, str] | None = None) -> str:
        flags = flags or {}
        return _SLOT.sub(lambda m: flags.get(m[1], m[1]), self.template)

    @property
    def params(self) -> tuple[str, ...]:
        """The parameter names the message mentions, in order."""
        return tuple(dict.fromkeys(_SLOT.findall(self.template)))
