"""The asyncio Association against scripted raw-socket peers on 127.0.0.1 (in-process): the
unusual cells of PS3.8 Table 9-10 over a real socket, release collision, and the driver's own
failure paths (abort while sending, a peer that stops reading, a bug in the acceptor policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from netdicom.core import errors
from netdicom.core.pdu import (
    AbortPDU,
    AssociateAC,
    AssociateRQ,
    ContextResult,
    Framer,
    PDataTF,
    PresentationContextAC,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
    encode_pdu,
)
from netdicom.core.pdu.types import PDU
from netdicom.core.ul.states import State
from netdicom.services.echo import ECHO_CONTEXTS, echo
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from netdicom.transport.server import Server
from tests.hardening.raw import echo_command, echo_rq

FAST = TransportConfig(timeouts=Timeouts(connect=2, acse=2, dimse=2, artim=2, idle=5))


class Stream:
    """The scripted side: asyncio streams plus a PDU framer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = Framer(0)

    async def read_pdu(self, timeout: float = 3.0) -> PDU | None:
        """The next PDU, or None once the connection is closed."""
        async with asyncio.timeout(timeout):
            while True:
                pdu = self.framer.next_pdu()
                if pdu is not None:
                    return pdu
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.framer.feed(data)

    async def send(self, pdu: PDU | bytes) -> None:
        self.writer.write(pdu if isinstance(pdu, bytes) else encode_pdu(pdu))
        await self.writer.drain()

    async def accept(self) -> AssociateRQ:
        rq = await self.read_pdu()
        assert isinstance(rq, AssociateRQ)
        await self.send(
            AssociateAC(
                rq.called_ae_title,
                rq.calling_ae_title,
                tuple(
                    PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE)
                    for pc in rq.presentation_contexts
                ),
                UserInformation(max_length=16384),
            )
        )
        return rq


Script = Callable[[Stream], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> Any:
    errors_seen: list[BaseException] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await script(Stream(reader, writer))
        except asyncio.CancelledError:
            pass  # the test is over (scripts that never read just sleep)
        except BaseException as exc:
            errors_seen.append(exc)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        await server.wait_closed()
    assert not errors_seen, errors_seen


async def _client(port: int, config: TransportConfig = FAST) -> Association:
    options = ClientOptions(called_ae="NETDICOM", transport=config)
    return await open_association(Peer("127.0.0.1", port), options, ECHO_CONTEXTS)


def run(coro: Coroutine[Any, Any, None]) -> None:
    async def main() -> None:
        baseline = {t for t in asyncio.all_tasks()}
        await coro
        await asyncio.sleep(0.05)
        leaked = {t for t in asyncio.all_tasks()} - baseline
        assert not leaked, leaked

    asyncio.run(main())


# --- requestor side --------------------------------------------------------------------------


def test_associate_rq_sent_to_requestor_is_answered_with_abort() -> None:
    # Evt6 in Sta5: AA-8, A-ABORT (provider, unexpected PDU).
    seen: list[PDU | None] = []

    async def script(peer: Stream) -> None:
        await peer.read_pdu()
        await peer.send(echo_rq())
        seen.append(await peer.read_pdu())
        seen.append(await peer.read_pdu())  # then the close

    async def main() -> None:
        async with scripted(script) as port:
            started = time.monotonic()
            with pytest.raises(
                errors.AssociationAborted,
                match="sent an A-ASSOCIATE-RQ while we awaited its answer to our A-ASSOCIATE-RQ",
            ):
                await _client(port)
            # At once, not at the ACSE timeout or ARTIM.
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.2)  # let the script see the close

    run(main())
    assert seen == [AbortPDU(2, 2), None]


def test_peer_closing_is_reported_as_closed_not_timeout() -> None:
    # Evt17 in Sta6 with a 30 s DIMSE timeout: the error is "closed", and it comes at once.
    async def script(peer: Stream) -> None:
        await peer.accept()
        await peer.read_pdu()  # the C-ECHO-RQ; then hang up

    async def main() -> None:
        config = TransportConfig(timeouts=Timeouts(acse=30, dimse=30))
        async with scripted(script) as port:
            assoc = await _client(port, config)
            started = time.monotonic()
            with pytest.raises(errors.ConnectionClosed, match="closed the connection"):
                await echo(assoc, 1, 30)
            assert time.monotonic() - started < 1.0
            assert assoc.state is State.STA1
            await assoc.wait_closed()

    run(main())


def test_abort_while_awaiting_release_rp() -> None:
    # Evt16 in Sta7: AA-3, the release ends in AssociationAborted.
    async def script(peer: Stream) -> None:
        await peer.accept()
        assert isinstance(await peer.read_pdu(), ReleaseRQ)
        await peer.send(AbortPDU(0, 0))

    async def main() -> None:
        async with scripted(script) as port:
            assoc = await _client(port)
            with pytest.raises(errors.AssociationAborted, match="aborted"):
                await assoc.release()
            assert assoc.state is State.STA1

    run(main())


def test_p_data_while_awaiting_release_rp_is_delivered() -> None:
    # Evt10 in Sta7: AR-6, the data still reaches the user; then the RP completes the release.
    async def script(peer: Stream) -> None:
        await peer.accept()
        assert isinstance(await peer.read_pdu(), ReleaseRQ)
        await peer.send(echo_command(5))
        await peer.send(ReleaseRP())

    async def main() -> None:
        async with scripted(script) as port:
            assoc = await _client(port)
            await assoc.release()
            assert assoc.outcome == "released"
            event = await assoc.receive(1)
            assert event.message.message_id == 5  # type: ignore[union-attr]

    run(main())


def test_abort_during_send_message_is_prompt() -> None:
    # The peer accepts and then never reads: a 32 MiB data set fills every buffer. Aborting
    # from another task ends the send with AssociationAborted within the close grace.
    async def script(peer: Stream) -> None:
        await peer.accept()
        await asyncio.sleep(6)

    async def main() -> None:
        config = TransportConfig(timeouts=Timeouts(acse=2, dimse=30))
        async with scripted(script) as port:
            assoc = await _client(port, config)
            from netdicom.core.dimse import CEchoRQ

            sending = asyncio.create_task(
                assoc.send_message(1, CEchoRQ(1), dataset=bytes(32 * 1024 * 1024))
            )
            await asyncio.sleep(0.3)
            assert not sending.done()
            started = time.monotonic()
            assoc.abort()
            with pytest.raises(errors.AssociationAborted):
                await sending
            await assoc.wait_closed()
            assert time.monotonic() - started < 3.0

    run(main())


def test_peer_that_stops_reading_times_out_the_send() -> None:
    async def script(peer: Stream) -> None:
        await peer.accept()
        await asyncio.sleep(6)

    async def main() -> None:
        config = TransportConfig(timeouts=Timeouts(acse=2, dimse=0.5))
        async with scripted(script) as port:
            assoc = await _client(port, config)
            from netdicom.core.dimse import CEchoRQ

            started = time.monotonic()
            with pytest.raises(errors.TimeoutExpired, match="read nothing"):
                await assoc.send_message(1, CEchoRQ(1), dataset=bytes(32 * 1024 * 1024))
            await assoc.wait_closed()
            # The DIMSE timeout, then at most the close grace for the unsent bytes.
            assert time.monotonic() - started < 3.5

    run(main())


class _FileLike:
    """A DatasetSource with readinto, as `netdicom store` sends files."""

    def __init__(self, data: bytes) -> None:
        self.length = len(data)
        self._file = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer: memoryview) -> int:
        return self._file.readinto(buffer)


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_peer_reset_mid_data_set_ends_the_send_quietly(
    source: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The peer reads 1 MB of a 32 MiB data set, then resets. The send ends with the reset,
    # at once: it does not go on writing the rest into a dead transport (asyncio logged
    # "socket.send() raised exception." for each of those thousands of PDUs, even with -q).
    async def script(peer: Stream) -> None:
        await peer.accept()
        got = 0
        while got < 1 << 20:
            got += len(await peer.reader.read(1 << 16))
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.writer.transport.abort()

    async def main() -> None:
        async with scripted(script) as port:
            assoc = await _client(port)
            from netdicom.core.dimse import CEchoRQ

            data = bytes(32 * 1024 * 1024)
            dataset = data if source == "bytes" else _FileLike(data)
            with pytest.raises((errors.ConnectionClosed, errors.AssociationAborted)):
                await assoc.send_message(1, CEchoRQ(1), dataset=dataset)
            await assoc.wait_closed()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(main())
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text[:500]


def test_cancelled_while_waiting_for_the_answer_aborts_and_closes() -> None:
    # The peer accepts the connection and never answers the A-ASSOCIATE-RQ. The requestor
    # gives up (its task is cancelled): the peer gets an A-ABORT and the connection closes,
    # instead of a socket left open until the process exits.
    seen: list[PDU | None] = []

    async def script(peer: Stream) -> None:
        rq = await peer.read_pdu()
        assert isinstance(rq, AssociateRQ)
        seen.append(await peer.read_pdu(5))
        seen.append(await peer.read_pdu(5))

    async def main() -> None:
        async with scripted(script) as port:
            opening = asyncio.create_task(_client(port))
            await asyncio.sleep(0.3)
            opening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await opening
            for _ in range(100):
                if len(seen) == 2:
                    break
                await asyncio.sleep(0.02)

    run(main())
    assert isinstance(seen[0], AbortPDU) and seen[1] is None


# --- acceptor side ---------------------------------------------------------------------------


async def _raw_client(port: int) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return Stream(reader, writer)


def test_release_collision_on_the_acceptor() -> None:
    # Both send A-RELEASE-RQ. The acceptor goes Sta7 -> Sta10 (AR-8), waits for the
    # requestor's RP (AR-10 -> Sta12), then sends its own (AR-4).
    outcome: list[str] = []

    async def handler(assoc: Association) -> None:
        await assoc.release()
        outcome.append(assoc.outcome)

    async def main() -> None:
        server = Server("127.0.0.1", 0, decide=_accept_all, handler=handler, config=FAST)
        await server.start()
        peer = await _raw_client(server.port)
        await peer.send(echo_rq())
        assert isinstance(await peer.read_pdu(), AssociateAC)
        assert isinstance(await peer.read_pdu(), ReleaseRQ)  # the acceptor releases
        await peer.send(ReleaseRQ())  # ... and so do we: collision
        await peer.send(ReleaseRP())  # we are the requestor: we answer first (AR-9)
        assert isinstance(await peer.read_pdu(), ReleaseRP)  # then the acceptor (AR-4)
        peer.writer.close()
        for _ in range(40):
            if not server.tasks:
                break
            await asyncio.sleep(0.05)
        assert not server.tasks
        await server.close()

    run(main())
    assert outcome == ["released"]


def _accept_all(rq: AssociateRQ, server: Server) -> tuple[AssociateAC, Any]:
    from netdicom.core import uids
    from netdicom.core.acse import AcceptorPolicy, default_chooser, negotiate_acceptor

    policy = AcceptorPolicy(
        ae_title="NETDICOM",
        transfer_syntax_chooser=default_chooser({uids.VERIFICATION: (uids.IMPLICIT_VR_LE,)}),
    )
    answer = negotiate_acceptor(rq, policy)
    assert not isinstance(answer, type(None))
    return answer  # type: ignore[return-value]


def test_a_bug_in_the_policy_aborts_that_association_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    def decide(rq: AssociateRQ, server: Server) -> tuple[AssociateAC, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug in the acceptor policy")
        return _accept_all(rq, server)

    async def handler(assoc: Association) -> None:
        while True:
            try:
                await assoc.receive()
            except errors.NetDicomError:
                return

    async def main() -> None:
        server = Server("127.0.0.1", 0, decide=decide, handler=handler, config=FAST)
        await server.start()
        peer = await _raw_client(server.port)
        await peer.send(echo_rq())
        # Sta3 with an internal error: A-ABORT from the provider, not a dead server.
        assert await peer.read_pdu() == AbortPDU(2, 0)
        peer.writer.close()
        second = await _raw_client(server.port)
        await second.send(echo_rq())
        assert isinstance(await second.read_pdu(), AssociateAC)
        second.writer.close()
        await server.close()
        assert not server.tasks

    with caplog.at_level(logging.ERROR, logger="netdicom"):
        run(main())
    assert any("internal error" in r.getMessage() for r in caplog.records)


def test_server_close_ends_every_association(tmp_path: Any) -> None:
    async def main() -> None:
        app = ServeApp(ServeConfig(directory=tmp_path, port=0, transport=FAST))
        await app.server.start()
        peers = []
        for _ in range(5):
            peer = await _raw_client(app.server.port)
            await peer.send(echo_rq())
            assert isinstance(await peer.read_pdu(), AssociateAC)
            peers.append(peer)
        idle = [await _raw_client(app.server.port) for _ in range(5)]  # in Sta2
        await asyncio.sleep(0.1)
        assert len(app.server.tasks) == 10
        started = time.monotonic()
        await app.server.close()
        assert time.monotonic() - started < 2.0
        assert not app.server.tasks and not app.server.associations
        for peer in peers:
            # Stopping serve is its user's decision: A-ABORT source 0 (PS3.8 §9.3.8).
            assert await peer.read_pdu() == AbortPDU(0, 0)
        for peer in [*peers, *idle]:
            assert await peer.read_pdu() is None
            peer.writer.close()

    run(main())


def test_back_to_back_requests_beyond_the_window(tmp_path: Any) -> None:
    # Through the real dispatcher in-process: 50 C-ECHO-RQs then A-RELEASE-RQ in one write.
    async def main() -> None:
        app = ServeApp(ServeConfig(directory=tmp_path, port=0, transport=FAST))
        await app.server.start()
        peer = await _raw_client(app.server.port)
        await peer.send(echo_rq())
        assert isinstance(await peer.read_pdu(), AssociateAC)
        await peer.send(b"".join(echo_command(i) for i in range(1, 51)) + encode_pdu(ReleaseRQ()))
        from netdicom.core.dimse import decode_command

        for i in range(1, 51):
            pdu = await peer.read_pdu()
            assert isinstance(pdu, PDataTF)
            response = decode_command(bytes(pdu.pdvs[0].data))
            assert response.message_id_being_responded_to == i  # type: ignore[attr-defined]
        assert isinstance(await peer.read_pdu(), ReleaseRP)
        peer.writer.close()
        await app.server.close()

    run(main())


def test_beyond_the_pending_limit_the_oldest_unassociated_connection_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Connections that have not associated may each hold a partial A-ASSOCIATE-RQ (up to
    # MAX_OTHER_PDU) until ARTIM: their number is bounded (400 peers held 490 MB). The oldest
    # is dropped, and a peer that associates at once still gets in.
    from netdicom.transport import server as server_module

    monkeypatch.setattr(server_module, "_MAX_PENDING", 3)

    async def handler(assoc: Association) -> None:
        await assoc.wait_closed()

    async def main() -> None:
        server = Server("127.0.0.1", 0, decide=_accept_all, handler=handler, config=FAST)
        await server.start()
        partial = encode_pdu(echo_rq())[:-1]  # all but the last byte
        slow = []
        for _ in range(5):
            peer = await _raw_client(server.port)
            await peer.send(partial)
            slow.append(peer)
            await asyncio.sleep(0.05)
        # The two oldest were dropped (EOF at once), the three newest are still waiting.
        for peer in slow[:2]:
            assert await peer.read_pdu(1.0) is None
        for peer in slow[2:]:
            with pytest.raises(TimeoutError):
                await peer.read_pdu(0.2)
        quick = await _raw_client(server.port)
        await quick.send(echo_rq())
        assert isinstance(await quick.read_pdu(), AssociateAC)
        for peer in [*slow, quick]:
            peer.writer.close()
        await server.close()

    run(main())
