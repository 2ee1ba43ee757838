"""The one exception type that means "the user gave us something we cannot use"."""


class UserError(Exception):
    """Bad usage or bad input: printed as one line on stderr, exit code 2.

    The message names the problem and the fix, e.g.
    ``UserError("--data /x: no such folder. Pass the folder that holds wikiart/ ...")``.
    """
