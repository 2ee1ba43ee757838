"""The one exception type that means "the user gave us something we cannot use"."""


class UserError(Exception):
    """Bad usage or bad input: printed as one line on stderr, exit code 2.

    The message names the problem and the fix, e.g.
    ``UserError("--data /x: no such folder. Pass the folder that holds wikiart/ ...")``.
    """


def check_positive_int(value, flag: str) -> int:
    """``value`` when it is a positive integer; else one `UserError` naming
    ``flag`` (e.g. ``--top-k``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{flag} {value}: pass a positive integer.")
    return value
