"""Requestor side: open a connection and negotiate an association."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING

from netdicom.core.address import host_port
from netdicom.core.errors import (
    ConnectFailed,
    ConnectionClosed,
    NetDicomError,
    NoAcceptedContext,
)
from netdicom.core.pdu import AssociateRQ
from netdicom.transport.association import Association, open_stream
from netdicom.transport.config import TransportConfig

if TYPE_CHECKING:
    # Tests only (fault injection): not imported on a real run.
    from netdicom.transport.faults import FaultInjector


async def associate(
    host: str,
    port: int,
    rq: AssociateRQ,
    config: TransportConfig,
    *,
    faults: FaultInjector | None = None,
) -> Association:
    """Connect and send `rq`; return once the peer accepted.

    Raises ConnectFailed, TimeoutExpired, AssociationRejected, AssociationAborted or
    ConnectionClosed. An association accepted with no usable context is returned as is: the
    caller decides (see `netdicom.services.common.require_context`).
    """
    try:
        reader, writer = await open_stream(host, port, config)
    except ConnectFailed as exc:
        cause = exc.__cause__ or exc.__context__
        handshake = isinstance(cause, ssl.SSLError) or (
            isinstance(cause, ConnectionError) and not isinstance(cause, ConnectionRefusedError)
        )
        if config.ssl_context is None or cause is None or not handshake:
            raise
        # A TLS handshake failure: say which check failed and what to try (exit 4).
        from netdicom.transport.tls import describe_handshake_failure

        raise ConnectFailed(describe_handshake_failure(cause, host, port)) from None
    assoc = Association(reader, writer, requestor=True, config=config, faults=faults)
    try:
        assoc.start_requestor(rq)
    except BaseException:
        # An RQ that cannot be encoded (LocalProtocolError) must not leave the socket open.
        assoc.drop_connection()
        raise
    try:
        await assoc.wait_established(config.timeouts.acse)
    except asyncio.CancelledError:
        # Given up while waiting for the answer (e.g. `store -j` when the other associations
        # took every file): A-ABORT, as a requestor may in Sta5 (PS3.8 Table 9-10, AA-1), so
        # the socket is not left open for the peer to answer into.
        assoc.abort()
        raise
    except NoAcceptedContext:
        # The association is being released (see Association._indicate); let it finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(assoc.wait_closed(), config.timeouts.acse)
        assoc.drop_connection()
        raise
    except NetDicomError as exc:
        assoc.drop_connection()
        await assoc.wait_closed()
        if isinstance(exc, ConnectionClosed) and config.ssl_context is not None:
            # With TLS 1.3 a server that refuses our certificate says so only after our side
            # of the handshake completed: we see the connection close before any answer.
            raise ConnectFailed(
                f"TLS: {host_port(host, port)} closed the connection before answering the association "
                "request: it may require a client certificate (--tls-cert/--tls-key) signed by "
                "a CA it trusts, or have refused ours"
            ) from exc
        if (
            isinstance(exc, ConnectionClosed)
            and assoc.negotiated is None
            and "in the middle of a PDU" not in str(exc)
        ):
            # A DICOM-TLS port (e.g. 2762) drops a plain A-ASSOCIATE-RQ without a word.
            raise ConnectionClosed(f"{exc}; if the peer requires TLS, add --tls") from exc
        raise
    return assoc
