"""A TLS 1.3 server that refuses our certificate does so after our side of the handshake
completed (RFC 8446 §4.4.2.4): its alert can arrive before the association has taken the
connection over from asyncio's streams. The client must see the end at once, not wait for an
A-ASSOCIATE-AC until the ACSE timeout (seen against dcmtk's storescp, which sends the alert and
keeps the socket open a while)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading

from netdicom.core.errors import ConnectionClosed
from netdicom.transport.association import Association, open_stream
from netdicom.transport.config import Timeouts, TransportConfig
from netdicom.transport.tls import TlsOptions, client_context, server_context
from tests.hardening.raw import echo_rq
from tests.security.certs import Pki


def _refuse_and_linger(
    listener: socket.socket, context: ssl.SSLContext, end: threading.Event
) -> None:
    conn, _ = listener.accept()
    with contextlib.suppress(ssl.SSLError, OSError):
        context.wrap_socket(conn, server_side=True)  # fails: the client sent no certificate
    end.wait(10)  # like storescp: the alert is sent, the socket not closed yet
    conn.close()


async def _refused_before_take_over(pki: Pki) -> tuple[type[BaseException] | None, float, bool]:
    mutual = server_context(
        TlsOptions(cert=pki.server_cert, key=pki.server_key, ca=pki.ca, verify_peer=True)
    )
    mutual.minimum_version = ssl.TLSVersion.TLSv1_3  # the refusal comes after our handshake
    end = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=_refuse_and_linger, args=(listener, mutual, end))
        server.start()
        config = TransportConfig(
            timeouts=Timeouts(connect=5, acse=5, dimse=5, artim=5, idle=5),
            ssl_context=client_context(TlsOptions(ca=pki.ca)),  # no certificate of ours
            server_hostname="localhost",
        )
        loop = asyncio.get_running_loop()
        port = listener.getsockname()[1]
        try:
            reader, writer = await open_stream("127.0.0.1", port, config)
            # Take over exactly when the TLS layer has dropped the connection but the streams
            # have not been told yet (their connection_lost is queued): the race's window.
            async with asyncio.timeout(5):
                while not writer.transport.is_closing():
                    await asyncio.sleep(0)
            in_window = reader.exception() is None and not reader.at_eof()
            assoc = Association(reader, writer, requestor=True, config=config)
            assoc.start_requestor(echo_rq())
            started = loop.time()
            outcome: type[BaseException] | None = None
            try:
                await assoc.wait_established(config.timeouts.acse)
            except Exception as exc:
                outcome = type(exc)
            await assoc.wait_closed()
            return outcome, loop.time() - started, in_window
        finally:
            end.set()
            await asyncio.to_thread(server.join)


def test_refusal_right_after_the_handshake_is_seen_at_once(pki: Pki) -> None:
    # The alert may also come so soon that the streams hear of the end before we look (the
    # case the association handled already): then the race was not set up, try again.
    for _ in range(10):
        outcome, waited, in_window = asyncio.run(_refused_before_take_over(pki))
        if in_window:
            break
    assert in_window, "the streams had always heard of the end first: the race was not set up"
    assert outcome is ConnectionClosed
    assert waited < 1.0
