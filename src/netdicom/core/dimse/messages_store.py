"""C-STORE messages (PS3.7 §9.3.1); loaded when first named (see messages.py)."""

from __future__ import annotations

from typing import ClassVar

from netdicom.core.dimse.messages import CommandField, Priority
from netdicom.core.records import frozen


@frozen
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


@frozen
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
