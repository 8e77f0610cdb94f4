"""netdicom.render.printable: what a peer sends cannot steer the terminal it is printed on."""

from __future__ import annotations

import pytest

from netdicom.render.printable import printable


@pytest.mark.parametrize("text", ["DOE^JOHN", "Müller^Hans", "山田^太郎", "a b\\c", ""])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("line\nforged line", "line\\nforged line"),
        ("\x1b]0;window title\x07", "\\x1b]0;window title\\x07"),  # OSC: set the title
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # clear screen, colour
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("abc\u202edcb", "abc\\u202edcb"),  # right-to-left override
        ("cr\roverwrite", "cr\\roverwrite"),
        ("nul\x00", "nul\\x00"),
    ],
)
def test_control_and_invisible_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()
