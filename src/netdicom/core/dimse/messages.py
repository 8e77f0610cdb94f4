"""DIMSE-C messages as values (PS3.7 §9.3; command fields in PS3.7 Annex E).

Each class holds the command elements its message may carry; the codec (codec.py) maps field
names to group-0000 tags. Strings are decoded values: UIDs without their NUL padding, AE titles
and comments without space padding. `has_dataset` mirrors Command Data Set Type (0000,0800).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from netdicom.core import uids


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


@dataclass(frozen=True, slots=True)
class CEchoRQ:
    """C-ECHO-RQ (PS3.7 §9.3.5.1)."""

    message_id: int
    affected_sop_class_uid: str = uids.VERIFICATION
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RQ


@dataclass(frozen=True, slots=True)
class CEchoRSP:
    """C-ECHO-RSP (PS3.7 §9.3.5.2)."""

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RSP


@dataclass(frozen=True, slots=True)
class CStoreRQ:
    """C-STORE-RQ (PS3.7 §9.3.1.1); the data set is the instance.

    The Move Originator elements are set on the sub-operations of a C-MOVE.
    """

    message_id: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = Priority.MEDIUM
    move_originator_ae_title: str | None = None
    move_originator_message_id: int | None = None
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_STORE_RQ


@dataclass(frozen=True, slots=True)
class CStoreRSP:
    """C-STORE-RSP (PS3.7 §9.3.1.2)."""

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    offending_element: tuple[int, ...] = ()
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_STORE_RSP


@dataclass(frozen=True, slots=True)
class CFindRQ:
    """C-FIND-RQ (PS3.7 §9.3.2.1); the data set is the identifier."""

    message_id: int
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_FIND_RQ


@dataclass(frozen=True, slots=True)
class CFindRSP:
    """C-FIND-RSP (PS3.7 §9.3.2.2).

    A pending response (0xFF00/0xFF01) carries the matching identifier: set `has_dataset=True`
    for those; the final response has none (PS3.4 C.4.1.1.3).
    """

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    offending_element: tuple[int, ...] = ()
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_FIND_RSP


@dataclass(frozen=True, slots=True)
class CGetRQ:
    """C-GET-RQ (PS3.7 §9.3.3.1); the data set is the identifier."""

    message_id: int
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_GET_RQ


@dataclass(frozen=True, slots=True)
class CGetRSP:
    """C-GET-RSP (PS3.7 §9.3.3.2); an identifier may list failed SOP instances."""

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None
    offending_element: tuple[int, ...] = ()
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_GET_RSP


@dataclass(frozen=True, slots=True)
class CMoveRQ:
    """C-MOVE-RQ (PS3.7 §9.3.4.1); `move_destination` is an AE title."""

    message_id: int
    affected_sop_class_uid: str
    move_destination: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RQ


@dataclass(frozen=True, slots=True)
class CMoveRSP:
    """C-MOVE-RSP (PS3.7 §9.3.4.2); same elements as C-GET-RSP."""

    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None
    offending_element: tuple[int, ...] = ()
    error_comment: str | None = None
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RSP


@dataclass(frozen=True, slots=True)
class CCancelRQ:
    """C-CANCEL-RQ (PS3.7 §9.3.2.3, §9.3.3.3, §9.3.4.3): names the operation it cancels."""

    message_id_being_responded_to: int
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_CANCEL_RQ


@dataclass(frozen=True, slots=True)
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


DimseMessage = (
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

MESSAGE_CLASSES: tuple[type[DimseMessage], ...] = (
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CCancelRQ,
)
