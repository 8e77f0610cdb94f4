"""How the association takes the connection over from asyncio streams: bytes the stream read
before (an A-ASSOCIATE-RQ sent at once, then maybe a close), and the PDU-level trace hook."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from netdicom.core import uids
from netdicom.core.acse import AcceptorPolicy, default_chooser, negotiate_acceptor
from netdicom.core.errors import ConnectionClosed
from netdicom.core.pdu import (
    PDU,
    AssociateAC,
    AssociateRQ,
    Framer,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
    encode_pdu,
)
from netdicom.services.echo import ECHO_CONTEXTS, echo
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from tests.hardening.raw import echo_rq

FAST = TransportConfig(timeouts=Timeouts(connect=2, acse=2, dimse=2, artim=2, idle=5))
POLICY = AcceptorPolicy(
    ae_title="NETDICOM",
    transfer_syntax_chooser=default_chooser({uids.VERIFICATION: (uids.IMPLICIT_VR_LE,)}),
)


def decide(rq: AssociateRQ) -> tuple[AssociateAC, object] | object:
    return negotiate_acceptor(rq, POLICY)


async def _late_acceptor(close_first: bool) -> tuple[PDU | None, Association]:
    """A client sends its A-ASSOCIATE-RQ (and maybe closes) before the server side builds
    its Association: the bytes wait in the StreamReader and must not be lost."""
    built: asyncio.Future[Association] = asyncio.get_running_loop().create_future()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader._buffer:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        if close_first:
            await asyncio.sleep(0.1)  # the client's close arrives too
        assoc = Association(reader, writer, requestor=False, config=FAST, decide=decide)  # type: ignore[arg-type]
        assoc.start_acceptor()
        built.set_result(assoc)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_pdu(echo_rq()))
    await writer.drain()
    if close_first:
        writer.write_eof()
    assoc = await asyncio.wait_for(built, 3)
    framer = Framer(0)
    answer: PDU | None = None
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(3):
            while answer is None:
                data = await reader.read(65536)
                if not data:
                    break
                framer.feed(data)
                answer = framer.next_pdu()
    writer.close()
    await asyncio.wait_for(assoc.wait_closed() if close_first else asyncio.sleep(0), 3)
    assoc.abort()
    await assoc.wait_closed()
    server.close()
    await server.wait_closed()
    return answer, assoc


def test_bytes_read_before_the_association_are_handled() -> None:
    answer, _ = asyncio.run(_late_acceptor(close_first=False))
    assert isinstance(answer, AssociateAC)


def test_request_then_close_before_the_association_is_handled() -> None:
    answer, assoc = asyncio.run(_late_acceptor(close_first=True))
    assert isinstance(answer, AssociateAC)  # answered, then the end of the stream was seen
    # Evt17 in Sta6: the peer closed without release, which is what is reported.
    assert isinstance(assoc.end_reason, ConnectionClosed)
    assert "closed the connection without release or abort" in str(assoc.end_reason)
    assert assoc.outcome == "closed by peer"


def test_trace_sees_every_pdu_both_ways(tmp_path: Path) -> None:
    seen: list[tuple[str, object]] = []

    async def main() -> None:
        app = ServeApp(ServeConfig(directory=tmp_path, port=0, transport=FAST))
        await app.server.start()
        task = asyncio.create_task(app.server.serve_forever())
        try:
            config = TransportConfig(timeouts=FAST.timeouts, trace=lambda *a: seen.append(a))
            options = ClientOptions(called_ae="NETDICOM", transport=config)
            assoc = await open_association(
                Peer("127.0.0.1", app.server.port), options, ECHO_CONTEXTS
            )
            await echo(assoc, 2, 2)
            await assoc.release()
        finally:
            await app.server.close(grace=1.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
    kinds = [(direction, type(what).__name__) for direction, what in seen]
    assert kinds == [
        ("send", "AssociateRQ"),
        ("recv", "AssociateAC"),
        ("send", "str"),
        ("recv", "PDataTF"),
        ("send", "str"),
        ("recv", "PDataTF"),
        ("send", "ReleaseRQ"),
        ("recv", "ReleaseRP"),
    ]
    assert isinstance(seen[3][1], PDataTF) and isinstance(seen[-1][1], ReleaseRP)
    assert isinstance(seen[-2][1], ReleaseRQ)
    description = seen[2][1]
    assert isinstance(description, str)
    assert description.startswith("P-DATA-TF context 1, command (last),")
