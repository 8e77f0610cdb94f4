"""Requestor side: open a connection and negotiate an association."""

from __future__ import annotations

import asyncio
import contextlib

from netdicom.core.errors import NetDicomError, NoAcceptedContext
from netdicom.core.pdu import AssociateRQ
from netdicom.transport.association import Association, open_stream
from netdicom.transport.config import TransportConfig
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
    reader, writer = await open_stream(host, port, config)
    assoc = Association(reader, writer, requestor=True, config=config, faults=faults)
    try:
        assoc.start_requestor(rq)
    except BaseException:
        # An RQ that cannot be encoded (LocalProtocolError) must not leave the socket open.
        assoc.drop_connection()
        raise
    try:
        await assoc.wait_established(config.timeouts.acse)
    except NoAcceptedContext:
        # The association is being released (see Association._indicate); let it finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(assoc.wait_closed(), config.timeouts.acse)
        assoc.drop_connection()
        raise
    except NetDicomError:
        assoc.drop_connection()
        await assoc.wait_closed()
        raise
    return assoc
