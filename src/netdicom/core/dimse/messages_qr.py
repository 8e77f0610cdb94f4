"""Query/retrieve messages: C-FIND, C-GET, C-MOVE and C-CANCEL (PS3.7 §9.3.2-9.3.4);
loaded when first named (see messages.py)."""

from __future__ import annotations

from typing import ClassVar

from netdicom.core.dimse.messages import CommandField, Priority
from netdicom.core.records import frozen


@frozen
class CFindRQ:
    """C-FIND-RQ (PS3.7 §9.3.2.1); the data set is the identifier."""

    message_id: int
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_FIND_RQ


@frozen
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


@frozen
class CGetRQ:
    """C-GET-RQ (PS3.7 §9.3.3.1); the data set is the identifier."""

    message_id: int
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_GET_RQ


@frozen
class _SubOperationsRSP:
    """The elements C-GET-RSP and C-MOVE-RSP share (PS3.7 Tables 9.3-5 and 9.3-7); an
    identifier may list failed SOP instances."""

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


@frozen
class CGetRSP(_SubOperationsRSP):
    """C-GET-RSP (PS3.7 §9.3.3.2)."""

    command_field: ClassVar[CommandField] = CommandField.C_GET_RSP


@frozen
class CMoveRQ:
    """C-MOVE-RQ (PS3.7 §9.3.4.1); `move_destination` is an AE title."""

    message_id: int
    affected_sop_class_uid: str
    move_destination: str
    priority: int = Priority.MEDIUM
    has_dataset: bool = True
    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RQ


@frozen
class CMoveRSP(_SubOperationsRSP):
    """C-MOVE-RSP (PS3.7 §9.3.4.2): the same elements as C-GET-RSP."""

    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RSP


@frozen
class CCancelRQ:
    """C-CANCEL-RQ (PS3.7 §9.3.2.3, §9.3.3.3, §9.3.4.3): names the operation it cancels."""

    message_id_being_responded_to: int
    has_dataset: bool = False
    command_field: ClassVar[CommandField] = CommandField.C_CANCEL_RQ
