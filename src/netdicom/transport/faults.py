"""Fault injection for tests: drop, delay, truncate or corrupt a chosen PDU, or close the
connection at a chosen point, on either side of an association.

A FaultInjector is given to one Association (client: `associate(..., faults=...)`; server:
`Server(..., faults=factory)`, one injector per connection). Every PDU the association writes
passes through `send`, every PDU it has framed through `on_receive`. A rule matches by
direction, PDU type and occurrence (the n-th matching PDU, counted per rule); the first rule
that fires on a PDU decides its fate. Whatever is injected, both sides must end in a clean
abort or a clear error within their timeouts: that is what the tests check.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import TYPE_CHECKING

from netdicom.core.errors import LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu import PDU, PDUType
from netdicom.core.pdu.codec import encode_pdu
from netdicom.core.pdu.framer import Framer
from netdicom.core.records import frozen

if TYPE_CHECKING:
    from netdicom.transport.association import Association


class FaultAction(Enum):
    # Send: the PDU is never written. Receive: it is ignored as if it never came.
    DROP = "drop"
    # Send: the PDU, and every PDU after it (order is kept), is written `seconds` later.
    # Receive: the PDU is handled `seconds` later, and reading pauses meanwhile.
    DELAY = "delay"
    # Send: only the first `keep` bytes are written, then nothing more: the connection stalls
    # mid-PDU, as a peer that hangs would. Receive: this PDU and all later ones are ignored.
    TRUNCATE = "truncate"
    # The byte at `offset` of the encoded PDU (header included) is XORed with 0xFF.
    CORRUPT = "corrupt"
    # The TCP connection is closed instead of sending / on receipt, with no PDU.
    CLOSE = "close"


class Direction(Enum):
    SEND = "send"
    RECEIVE = "receive"


@frozen
class Fault:
    action: FaultAction
    direction: Direction = Direction.SEND
    pdu_type: PDUType | None = None  # None: any PDU
    occurrence: int = 1  # the n-th matching PDU (1-based)
    seconds: float = 0.0  # DELAY
    keep: int = 6  # TRUNCATE (send)
    offset: int = 0  # CORRUPT; beyond the end: the last byte


def _flip(data: bytes, offset: int) -> bytes:
    if not data:
        return data
    mutable = bytearray(data)
    mutable[min(offset, len(mutable) - 1)] ^= 0xFF
    return bytes(mutable)


class FaultInjector:
    """The faults for one association. Not shared: it counts the PDUs it has seen."""

    def __init__(self, *faults: Fault) -> None:
        self._faults = faults
        self._counts: dict[int, int] = {}
        self.fired: list[Fault] = []
        self._held: list[bytes] | None = None  # sends waiting for a DELAY to pass
        self._send_stalled = False
        self._receive_stalled = False

    def _match(self, direction: Direction, pdu_type: int) -> Fault | None:
        chosen: Fault | None = None
        for index, fault in enumerate(self._faults):
            if fault.direction is not direction:
                continue
            if fault.pdu_type is not None and fault.pdu_type != pdu_type:
                continue
            count = self._counts.get(index, 0) + 1
            self._counts[index] = count
            if count == fault.occurrence and chosen is None:
                chosen = fault
        if chosen is not None:
            self.fired.append(chosen)
        return chosen

    # --- sending ------------------------------------------------------------------------------

    def send(self, assoc: Association, pdu_type: int, data: bytes) -> None:
        """Write `data` (one encoded PDU) for `assoc`, unless a fault says otherwise."""
        if self._send_stalled:
            return
        fault = self._match(Direction.SEND, pdu_type)
        action = None if fault is None else fault.action
        if action is FaultAction.DROP:
            return
        if action is FaultAction.CLOSE:
            assoc.drop_connection()
            return
        if action is FaultAction.TRUNCATE:
            assert fault is not None
            data = data[: fault.keep]
            self._send_stalled = True
        elif action is FaultAction.CORRUPT:
            assert fault is not None
            data = _flip(data, fault.offset)
        if self._held is not None:
            self._held.append(data)
        elif action is FaultAction.DELAY:
            assert fault is not None
            self._held = [data]
            asyncio.get_running_loop().call_later(fault.seconds, self._release_held, assoc)
        else:
            assoc.write_raw(data)

    def _release_held(self, assoc: Association) -> None:
        held, self._held = self._held or [], None
        for data in held:
            assoc.write_raw(data)

    # --- receiving ----------------------------------------------------------------------------

    async def on_receive(self, assoc: Association, pdu: PDU) -> PDU | RemoteProtocolError | None:
        """What the association should handle instead of `pdu`: the PDU (maybe changed), an
        error to treat as an invalid PDU (Evt19), or None to ignore it."""
        if self._receive_stalled:
            return None
        fault = self._match(Direction.RECEIVE, pdu.pdu_type)
        if fault is None:
            return pdu
        if fault.action is FaultAction.DROP:
            return None
        if fault.action is FaultAction.CLOSE:
            assoc.drop_connection()
            return None
        if fault.action is FaultAction.DELAY:
            await asyncio.sleep(fault.seconds)
            return pdu
        if fault.action is FaultAction.TRUNCATE:
            self._receive_stalled = True
            return None
        return self._corrupted(pdu, fault.offset)

    def _corrupted(self, pdu: PDU, offset: int) -> PDU | RemoteProtocolError | None:
        try:
            data = encode_pdu(pdu)
        except LocalProtocolError:
            return pdu  # decoded leniently, cannot be re-encoded: leave it alone
        framer = Framer(0)
        framer.feed(_flip(data, offset))
        try:
            changed = framer.next_pdu()
        except RemoteProtocolError as exc:
            return exc
        if changed is None:
            # The length field grew: the rest of the "PDU" never comes, as with a stalled peer.
            self._receive_stalled = True
        return changed
