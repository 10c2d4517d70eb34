"""The one exception type for mistakes a user can make; the CLI maps it to exit code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class OwbenchError(Exception):
    """A problem the user can fix. The message names the problem and the fix, on one line."""


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> OwbenchError:
    """Build an 'unknown X' error with close-match suggestions."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    msg = f"unknown {kind} {name!r}"
    if close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    if hint:
        msg += f" ({hint})"
    return OwbenchError(msg)
