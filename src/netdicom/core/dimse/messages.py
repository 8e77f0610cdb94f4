"""DIMSE-C messages as values (PS3.7 §9.3; command fields in PS3.7 Annex E).

Each class holds the command elements its message may carry; the codec (codec.py) maps field
names to group-0000 tags. Strings are decoded values: UIDs without their NUL padding, AE titles
and comments without space padding. `has_dataset` mirrors Command Data Set Type (0000,0800).
"""

from __future__ import annotations

import importlib
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias

from netdicom.core import uids
from netdicom.core.records import frozen


class CommandField(IntEnum):
    """Command Field (0000,0100) values (PS3.7 Annex E); a response is its request | 0x8000."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    C_CANCEL_RQ = 0x0FFF
    # DIMSE-N: named so logs can say what arrived; the codec does not implement them and
    # reports them as UnknownCommand / UnsupportedCommand.
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150


class Priority(IntEnum):
    """Priority (0000,0700) (PS3.7 §9.3.1.1)."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


@frozen
class CEchoRQ:
    """C-ECHO-RQ (PS3.7 §9.3.5.1)."""

    message_id: int
    affected_sop_class_uid: str = uids.VERIFICATION
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RQ


@frozen
class CEchoRSP:
    """C-ECHO-RSP (PS3.7 §9.3.5.2)."""

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RSP


@frozen
class UnsupportedCommand:
    """A command set we could read but do not implement (e.g. an N-service).

    Reported by the assembler instead of failing, so a server can answer with a failure
    status (codec.encode_unsupported_response) rather than abort the association.
    `message_id` is the Message ID (0000,0110) when present; a data set announced by
    `has_dataset` still arrives and is to be discarded.
    """

    command_field: int
    message_id: int | None
    affected_sop_class_uid: str | None
    has_dataset: bool

    @property
    def is_request(self) -> bool:
        """True for request command fields (bit 15 clear, PS3.7 Annex E)."""
        return not self.command_field & 0x8000


# The messages of storage and query/retrieve are defined in modules of their own, loaded the
# first time one of their names is used: a frozen dataclass costs about 1 ms to create, and
# `netdicom echo` needs none of them (start-up, issue 2). The names below are this module's
# (and netdicom.core.dimse's) as if defined here.
_LAZY: Final = {
    "CStoreRQ": "netdicom.core.dimse.messages_store",
    "CStoreRSP": "netdicom.core.dimse.messages_store",
    **{
        name: "netdicom.core.dimse.messages_qr"
        for name in (
            "CFindRQ",
            "CFindRSP",
            "CGetRQ",
            "CGetRSP",
            "CMoveRQ",
            "CMoveRSP",
            "CCancelRQ",
        )
    },
}
# Command Field -> the class of that message, by name (message_class loads it).
_CLASS_FOR_FIELD: Final = {
    CommandField.C_ECHO_RQ: "CEchoRQ",
    CommandField.C_ECHO_RSP: "CEchoRSP",
    CommandField.C_STORE_RQ: "CStoreRQ",
    CommandField.C_STORE_RSP: "CStoreRSP",
    CommandField.C_FIND_RQ: "CFindRQ",
    CommandField.C_FIND_RSP: "CFindRSP",
    CommandField.C_GET_RQ: "CGetRQ",
    CommandField.C_GET_RSP: "CGetRSP",
    CommandField.C_MOVE_RQ: "CMoveRQ",
    CommandField.C_MOVE_RSP: "CMoveRSP",
    CommandField.C_CANCEL_RQ: "CCancelRQ",
}

if TYPE_CHECKING:
    from netdicom.core.dimse.messages_qr import (
        CCancelRQ,
        CFindRQ,
        CFindRSP,
        CGetRQ,
        CGetRSP,
        CMoveRQ,
        CMoveRSP,
    )
    from netdicom.core.dimse.messages_store import CStoreRQ, CStoreRSP

    DimseMessage: TypeAlias = (
        CEchoRQ
        | CEchoRSP
        | CStoreRQ
        | CStoreRSP
        | CFindRQ
        | CFindRSP
        | CGetRQ
        | CGetRSP
        | CMoveRQ
        | CMoveRSP
        | CCancelRQ
    )
else:
    DimseMessage = object  # for annotations only


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def message_class(command_field: int) -> type[DimseMessage] | None:
    """The message class of a Command Field we implement, None for any other."""
    try:
        name = _CLASS_FOR_FIELD[CommandField(command_field)]
    except (ValueError, KeyError):
        return None
    cls: type[DimseMessage] = globals().get(name) or __getattr__(name)
    return cls
