"""What an action asks the driver to do. The core never does I/O itself; the asyncio
driver (netdicom.transport) carries these out in order."""

from __future__ import annotations

from enum import Enum

from netdicom.core.pdu.types import PDU
from netdicom.core.records import frozen


class Indication(Enum):
    """What the machine tells the local service user (PS3.8 §7 primitives)."""

    ASSOCIATE_REQUEST = "associate-request"  # AE-6 acceptable RQ: user must accept or reject
    ASSOCIATE_ACCEPTED = "associate-accepted"  # AE-3
    ASSOCIATE_REJECTED = "associate-rejected"  # AE-4
    DATA = "data"  # DT-2, AR-6
    RELEASE_REQUEST = "release-request"  # AR-2, AR-8: user must answer with Evt14
    RELEASE_CONFIRMED = "release-confirmed"  # AR-3, AR-10
    ABORT = "abort"  # AA-3 with source 0 (service user)
    PROVIDER_ABORT = "provider-abort"  # AA-3 with source 2, AA-4, AA-8
    TRANSPORT_CLOSED = "transport-closed"  # AR-5, AA-2, AA-5: the connection is gone


@frozen
class SendPDU:
    pdu: PDU


@frozen
class StartArtim:
    """Start, or restart if running, the ARTIM timer (PS3.8 §9.1.5)."""


@frozen
class StopArtim:
    pass


@frozen
class ConnectTransport:
    """AE-1: open the TCP connection."""


@frozen
class CloseTransport:
    pass


@frozen
class Indicate:
    """Pass a primitive up; `pdu` is the PDU that caused it, when there is one."""

    kind: Indication
    pdu: PDU | None = None


Effect = SendPDU | StartArtim | StopArtim | ConnectTransport | CloseTransport | Indicate
