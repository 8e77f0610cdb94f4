"""What a peer sent instead of the response we waited for, in DIMSE words, never in the
names of our classes (netdicom.services.session)."""

from __future__ import annotations

import pytest

from netdicom.core.dimse import (
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    UnsupportedCommand,
)
from netdicom.core.errors import RemoteProtocolError
from netdicom.services.session import command_name, responded_to


@pytest.mark.parametrize(
    ("message", "name"),
    [
        (CStoreRQ(3, "1.2.3", "1.2.3.4"), "a C-STORE-RQ"),
        (CStoreRSP(3, 0), "a C-STORE-RSP"),
        (UnsupportedCommand(0x0110, 4, None, False), "an N-GET-RQ"),
        (
            UnsupportedCommand(0x7777, None, None, False),
            "a command we do not know (command field 0x7777)",
        ),
    ],
)
def test_command_name(message: DimseMessage | UnsupportedCommand, name: str) -> None:
    assert command_name(message) == name


def test_responded_to_names_what_came_instead_of_a_response() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        responded_to(UnsupportedCommand(0x0FF0, None, None, False), 1)
    assert str(info.value) == (
        "expected a response to message 1, got a command we do not know (command field 0x0FF0)"
    )
    with pytest.raises(RemoteProtocolError) as info:
        responded_to(CStoreRQ(9, "1.2.3", "1.2.3.4"), 1)
    assert str(info.value) == "expected a response to message 1, got a C-STORE-RQ"
    with pytest.raises(RemoteProtocolError) as info:
        responded_to(CEchoRSP(2, 0), 1)
    assert str(info.value) == "expected a response to message 1, got a C-ECHO-RSP to message 2"
    responded_to(CEchoRSP(1, 0), 1)  # the expected one: no error
