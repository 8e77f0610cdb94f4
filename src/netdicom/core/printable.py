"""Text that came from a peer, made safe to print on a terminal.

A peer chooses the Error Comment of its responses, the values of its C-FIND matches, its
implementation version name, its AE title: any of them may hold a newline (breaking our
one-line messages and forging lines of their own) or an escape sequence (colours, the window
title, cursor moves: the terminal obeys what it is sent). Every such text goes through
`printable` on its way to a terminal or a log line. JSON output needs nothing (json.dumps
escapes control characters); CSV is data, written as received unless it goes straight to a
terminal.
"""

from __future__ import annotations

import re
from typing import Final

# C0 and C1 control characters (ESC, CSI, newline, carriage return, ...), and the invisible
# format characters that reorder or hide text (bidirectional overrides and isolates, line and
# paragraph separators, zero-width marks).
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """`text` with every control or invisible format character shown as an escape (`\\n`,
    `\\x1b`, `\\u202e`): what a peer sent stays readable and can do nothing to the terminal."""
    if _UNSAFE.search(text) is None:
        return text
    # repr escapes each of them (none is printable to Python either): '\n', '\x1b', '\u202e'
    return _UNSAFE.sub(lambda found: repr(found.group())[1:-1], text)


def quoted(text: str) -> str:
    """`text` in quotes for a message, made `printable`. Unlike repr, a backslash (the DICOM
    value separator, `1\\2`) is shown once, as typed, not doubled."""
    return f"'{printable(text)}'"
