"""What an association holds of received data that nobody has taken yet is bounded in bytes
(transport.association _QUEUE_HIGH_BYTES): past it the socket is no longer read (TCP then
slows the peer), and taking events resumes reading. A peer sending large PDUs cannot make it
hold more than the bound and one PDU, whatever the max PDU; small messages queue by the
hundred before reading pauses."""

from __future__ import annotations

import asyncio
import contextlib

from netdicom.core import uids
from netdicom.core.acse import AcceptorPolicy, ProposedContext, default_chooser, negotiate_acceptor
from netdicom.core.dimse import CStoreRQ, encode_command
from netdicom.core.pdu import AssociateAC, AssociateRQ, Framer, encode_pdu
from netdicom.transport.association import (
    _QUEUE_HIGH_BYTES,
    Association,
    DatasetFragment,
)
from netdicom.transport.config import Timeouts, TransportConfig
from tests.hardening.raw import echo_rq, pdata

CT = "1.2.840.10008.5.1.4.1.1.2"
PDU = 1 << 20  # the acceptor's max PDU: large, as `serve --max-pdu 1048576`
CONFIG = TransportConfig(
    timeouts=Timeouts(connect=5, acse=5, dimse=5, artim=5, idle=30), max_pdu=PDU + 64
)
POLICY = AcceptorPolicy(
    ae_title="NETDICOM",
    transfer_syntax_chooser=default_chooser({CT: (uids.EXPLICIT_VR_LE,)}),
)


def decide(rq: AssociateRQ) -> object:
    return negotiate_acceptor(rq, POLICY)


async def _held_while_nobody_takes(fragment: int, count: int) -> tuple[int, int, bool, int]:
    """A peer sends one C-STORE-RQ and `count` data fragments of `fragment` bytes; nobody
    takes them until reading has paused. (bytes held, events held, still reading, bytes
    taken in all once drained)."""
    built: asyncio.Future[Association] = asyncio.get_running_loop().create_future()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assoc = Association(reader, writer, requestor=False, config=CONFIG, decide=decide)  # type: ignore[arg-type]
        assoc.start_acceptor()
        built.set_result(assoc)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sender: asyncio.Task[None] | None = None
    try:
        contexts = (ProposedContext(CT, (uids.EXPLICIT_VR_LE,)),)
        writer.write(encode_pdu(echo_rq(contexts=contexts)))
        framer = Framer(0)
        answer = None
        while answer is None:
            framer.feed(await reader.read(65536))
            answer = framer.next_pdu()
        assert isinstance(answer, AssociateAC)
        assoc = await built
        command = encode_command(CStoreRQ(1, CT, "1.2.3.4"))
        payload = bytes(fragment)

        async def send() -> None:
            writer.write(pdata(1, command))
            for number in range(count):
                writer.write(pdata(1, payload, command=False, last=number == count - 1))
                await writer.drain()

        sender = asyncio.create_task(send())
        transport = assoc._transport
        # Wait until the association stops reading, or everything arrived.
        async with asyncio.timeout(10):
            while transport.is_reading() and assoc._queued_bytes < count * fragment:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # nothing more arrives while paused
        held_bytes, held_events = assoc._queued_bytes, len(assoc._events)
        still_reading = transport.is_reading()  # type: ignore[attr-defined]
        taken = 0
        async with asyncio.timeout(10):
            while taken < count * fragment:
                event = await assoc.receive()
                if isinstance(event, DatasetFragment):
                    taken += len(event.data)
        assoc.abort()
        await assoc.wait_closed()
        return held_bytes, held_events, still_reading, taken
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
        writer.close()
        server.close()
        await server.wait_closed()


def test_large_pdus_pause_reading_at_the_byte_bound() -> None:
    count = 3 * _QUEUE_HIGH_BYTES // PDU  # 24 MiB sent, more than the bound
    held, events, reading, taken = asyncio.run(_held_while_nobody_takes(PDU, count))
    assert not reading
    assert _QUEUE_HIGH_BYTES <= held <= _QUEUE_HIGH_BYTES + PDU
    assert events < count  # (32 events of 1 MiB, the old bound by count, held 32 MiB)
    assert taken == count * PDU  # reading resumed: everything came through


def test_small_messages_queue_by_the_hundred_before_reading_pauses() -> None:
    held, events, reading, taken = asyncio.run(_held_while_nobody_takes(2048, 600))
    assert reading  # 600 small fragments (1.2 MB) are held without pausing
    assert events == 601 and held == 600 * 2048
    assert taken == 600 * 2048
