"""DIMSE-C messages: values, command-set codec, statuses, fragmentation and reassembly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netdicom.core.dimse.codec import (
    DATASET_ABSENT,
    DATASET_PRESENT,
    UnknownCommand,
    decode_command,
    encode_command,
    encode_unsupported_response,
)
from netdicom.core.dimse.fragments import (
    MAX_COMMAND_LENGTH,
    UNLIMITED_FRAGMENT,
    AssemblyEvent,
    CommandReceived,
    DatasetFragment,
    MessageAssembler,
    fragment,
    max_fragment_length,
)
from netdicom.core.dimse.message_ids import MessageIdAllocator
from netdicom.core.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CommandField,
    DimseMessage,
    Priority,
    UnsupportedCommand,
)
from netdicom.core.dimse.status import StatusCategory, category, status_name

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


def __getattr__(name: str) -> Any:
    # The storage and query/retrieve messages load when first named (see messages.py).
    from netdicom.core.dimse import messages

    return getattr(messages, name)


__all__ = [
    "DATASET_ABSENT",
    "DATASET_PRESENT",
    "MAX_COMMAND_LENGTH",
    "UNLIMITED_FRAGMENT",
    "AssemblyEvent",
    "CCancelRQ",
    "CEchoRQ",
    "CEchoRSP",
    "CFindRQ",
    "CFindRSP",
    "CGetRQ",
    "CGetRSP",
    "CMoveRQ",
    "CMoveRSP",
    "CStoreRQ",
    "CStoreRSP",
    "CommandField",
    "CommandReceived",
    "DatasetFragment",
    "DimseMessage",
    "MessageAssembler",
    "MessageIdAllocator",
    "Priority",
    "StatusCategory",
    "UnknownCommand",
    "UnsupportedCommand",
    "category",
    "decode_command",
    "encode_command",
    "encode_unsupported_response",
    "fragment",
    "max_fragment_length",
    "status_name",
]
