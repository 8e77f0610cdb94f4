"""Message ID allocation for the requests we send (PS3.7 Annex E, (0000,0110) Message ID).

A Message ID is a uint16 that must differ from every other request still outstanding on the
association; it may be reused once the operation completed. We count up from 1, wrap after
65535 back to 1 (0 is avoided: some peers treat it as "unset") and skip ids still in use.
"""

from __future__ import annotations

from typing import Final

from netdicom.core.errors import LocalProtocolError

__all__ = ["MAX_MESSAGE_ID", "MessageIdAllocator"]

MAX_MESSAGE_ID: Final = 0xFFFF


class MessageIdAllocator:
    """Hands out Message IDs 1..65535, never one that is still outstanding."""

    __slots__ = ("_candidate", "_outstanding")

    def __init__(self, first: int = 1) -> None:
        if not 1 <= first <= MAX_MESSAGE_ID:
            raise LocalProtocolError(f"first message ID {first} is outside 1..{MAX_MESSAGE_ID}")
        self._candidate = first
        self._outstanding: set[int] = set()

    def next(self) -> int:
        """Reserve and return the next free ID; LocalProtocolError if all 65535 are in use."""
        if len(self._outstanding) >= MAX_MESSAGE_ID:
            raise LocalProtocolError("all 65535 message IDs are outstanding")
        candidate = self._candidate
        while candidate in self._outstanding:
            candidate = candidate % MAX_MESSAGE_ID + 1
        self._outstanding.add(candidate)
        self._candidate = candidate % MAX_MESSAGE_ID + 1
        return candidate

    def release(self, message_id: int) -> None:
        """Mark an ID free again once its operation completed; releasing twice is harmless."""
        self._outstanding.discard(message_id)

    def is_outstanding(self, message_id: int) -> bool:
        """Whether `message_id` was handed out and not yet released."""
        return message_id in self._outstanding

    @property
    def outstanding(self) -> frozenset[int]:
        """The IDs currently in use."""
        return frozenset(self._outstanding)
