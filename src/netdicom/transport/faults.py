"""Fault injection for tests: drop, delay, truncate or corrupt a chosen PDU, or close the
connection at a chosen point, on either side of an association.

A FaultInjector is given to an Association; every PDU it sends passes through `send`, every
PDU it receives through `received`. Rules match by direction, PDU type and occurrence.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from netdicom.core.pdu import PDU, PDUType

if TYPE_CHECKING:
    from netdicom.transport.association import Association


class FaultAction(Enum):
    DROP = "drop"  # the PDU is never written / is ignored on receipt
    DELAY = "delay"  # written after `seconds`
    TRUNCATE = "truncate"  # only the first `keep` bytes are written, then the connection stalls
    CORRUPT = "corrupt"  # byte at `offset` is XORed with 0xFF
    CLOSE = "close"  # the connection is closed instead of sending / on receipt


class Direction(Enum):
    SEND = "send"
    RECEIVE = "receive"


@dataclass(frozen=True, slots=True)
class Fault:
    action: FaultAction
    direction: Direction = Direction.SEND
    pdu_type: PDUType | None = None  # None: any PDU
    occurrence: int = 1  # the n-th matching PDU (1-based)
    seconds: float = 0.0
    keep: int = 6
    offset: int = 0


class FaultInjector:
    def __init__(self, *faults: Fault) -> None:
        self._faults = faults
        self._counts: dict[tuple[Direction, int], int] = {}
        self.fired: list[Fault] = []

    def _match(self, direction: Direction, pdu_type: PDUType) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.direction is not direction:
                continue
            if fault.pdu_type is not None and fault.pdu_type is not pdu_type:
                continue
            key = (direction, index)
            self._counts[key] = self._counts.get(key, 0) + 1
            if self._counts[key] == fault.occurrence:
                self.fired.append(fault)
                return fault
        return None

    def send(self, assoc: Association, pdu_type: PDUType, data: bytes) -> None:
        fault = self._match(Direction.SEND, pdu_type)
        if fault is None:
            assoc.write_raw(data)
        elif fault.action is FaultAction.DROP:
            return
        elif fault.action is FaultAction.DELAY:
            asyncio.get_running_loop().call_later(fault.seconds, assoc.write_raw, data)
        elif fault.action is FaultAction.TRUNCATE:
            assoc.write_raw(data[: fault.keep])
        elif fault.action is FaultAction.CORRUPT:
            mutable = bytearray(data)
            if fault.offset < len(mutable):
                mutable[fault.offset] ^= 0xFF
            assoc.write_raw(bytes(mutable))
        elif fault.action is FaultAction.CLOSE:
            assoc.drop_connection()

    def received(self, assoc: Association, pdu: PDU) -> bool:
        """False when the PDU is to be ignored."""
        fault = self._match(Direction.RECEIVE, pdu.pdu_type)
        if fault is None:
            return True
        if fault.action is FaultAction.CLOSE:
            assoc.drop_connection()
            return False
        return fault.action is not FaultAction.DROP
