"""Configuration of the transport: one frozen object passed down (DESIGN.md §2)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import field

from netdicom.core.records import frozen

# Our advertised Maximum Length for P-DATA-TF (PS3.8 D.1). Large, so that peers can send big
# fragments: fewer PDUs per data set is most of what makes a store fast.
DEFAULT_MAX_PDU = 262_144


@frozen
class Timeouts:
    """Seconds; None means wait forever. Defaults are documented in the README."""

    connect: float | None = 10.0
    # ACSE: waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP. An unanswered release ends in A-ABORT.
    acse: float | None = 30.0
    # DIMSE: waiting for one message; every pending response restarts it. Within a message it
    # restarts only per DIMSE_MIN_PROGRESS bytes (transport.association): a minimum rate.
    dimse: float | None = 60.0
    # ARTIM (PS3.8 §9.1.5): waiting for the A-ASSOCIATE-RQ after accept, and for the close after
    # a release/abort/reject we sent.
    artim: float = 30.0
    # Serve: an established association with no traffic and no operation in progress is aborted.
    idle: float | None = 60.0


@frozen
class TransportConfig:
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_pdu: int = DEFAULT_MAX_PDU
    ssl_context: ssl.SSLContext | None = None
    # Server-side hostname for TLS SNI/verification on the client; None uses the host we dial.
    server_hostname: str | None = None
    # Called for every PDU sent ("send") and received ("recv"), with the PDU, or for the
    # P-DATA-TF that the send fast path writes without building one, a short description
    # (str). For `--debug` traces; None (the default) costs nothing.
    trace: Callable[[str, object], None] | None = None
