"""serve answers a C-ECHO from the protocol callback when it can (the dispatcher's inline
handler), and through the service task when the inline handler declines; either way every
request is answered, in order, before a release queued behind them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from netdicom.core import uids
from netdicom.core.acse import AcceptedContext
from netdicom.core.dimse import CEchoRQ, CEchoRSP, DimseMessage
from netdicom.services.echo import ECHO_CONTEXTS, answer_echo_now, echo
from netdicom.services.peer import Peer
from netdicom.services.session import ClientOptions, open_association, receive_response
from netdicom.transport.association import Association
from tests.services.test_store_scp import serving


def test_inline_and_task_answers_mix(tmp_path: Path) -> None:
    inline_ids: list[int] = []

    def odd_only(assoc: Association, context: AcceptedContext, message: DimseMessage) -> bool:
        assert isinstance(message, CEchoRQ)
        if message.message_id % 2 == 0:
            return False  # declined: the dispatcher's task answers it
        answered = answer_echo_now(assoc, context, message)
        if answered:
            inline_ids.append(message.message_id)
        return answered

    async def main() -> None:
        async with serving(tmp_path) as app:
            app.dispatcher._inline[CEchoRQ] = odd_only
            assoc = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"), ClientOptions(), ECHO_CONTEXTS
            )
            replies = await echo(assoc, 10, 5)
            assert [r.status for r in replies] == [0] * 10
            # Pipelined: five requests written at once, then the release; all answered first.
            ids = [assoc.message_ids.next() for _ in range(5)]
            for message_id in ids:
                assoc._write_pdv(1, True, True, _encode(CEchoRQ(message_id)))
            for message_id in ids:
                response, _ = await receive_response(assoc, message_id, 5)
                assert isinstance(response, CEchoRSP) and response.status == 0
            await assoc.release()

    asyncio.run(asyncio.wait_for(main(), 30))
    # One at a time (1..10): every odd one inline. Pipelined (11..15): 11 inline; 12 declined
    # and queued, so 13 and 15 wait their turn behind it (answers keep the requests' order).
    assert inline_ids == [1, 3, 5, 7, 9, 11]


def _encode(message: CEchoRQ) -> bytes:
    from netdicom.core.dimse import encode_command

    return encode_command(message)


def test_verification_is_the_only_context_echo_succeeds_on_inline(tmp_path: Path) -> None:
    from netdicom.core.acse import ProposedContext
    from tests.dicomfiles import CT

    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"),
                ClientOptions(),
                [ProposedContext(CT, (uids.EXPLICIT_VR_LE,))],
            )
            # A C-ECHO-RQ on a storage context: 0122, whichever path answers it.
            assoc._write_pdv(1, True, True, _encode(CEchoRQ(7)))
            response, _ = await receive_response(assoc, 7, 5)
            assert isinstance(response, CEchoRSP) and response.status == 0x0122
            await assoc.release()

    asyncio.run(asyncio.wait_for(main(), 30))
