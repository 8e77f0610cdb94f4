"""`echo` with `--repeat`: each next C-ECHO-RQ goes out from the association's callback as the
response arrives. The DIMSE timeout still means "no response for that long", however long the
whole run takes, and every reply is counted once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from netdicom.core.acse import AcceptedContext
from netdicom.core.dimse import CEchoRQ, DimseMessage
from netdicom.core.errors import TimeoutExpired
from netdicom.services.echo import ECHO_CONTEXTS, answer_echo_now, echo
from netdicom.services.peer import Peer
from netdicom.services.session import ClientOptions, open_association
from netdicom.transport.association import Association
from tests.services.test_store_scp import serving


async def _open(port: int) -> Association:
    return await open_association(
        Peer("127.0.0.1", port, "NETDICOM"), ClientOptions(), ECHO_CONTEXTS
    )


def test_a_run_longer_than_the_timeout_is_not_a_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await _open(app.server.port)
            started = time.perf_counter()
            replies = await echo(assoc, 20000, 0.2)
            took = time.perf_counter() - started
            await assoc.release()
        assert len(replies) == 20000 and all(r.status == 0 for r in replies)
        assert all(r.seconds > 0 for r in replies)
        # The point of the test: the whole run outlasted the timeout several times over.
        assert took > 0.4, f"run too short ({took:.2f} s) to exercise the timeout"

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("answered", [1, 7])
def test_a_peer_that_goes_silent_times_out_after_the_timeout(tmp_path: Path, answered: int) -> None:
    def until(assoc: Association, context: AcceptedContext, message: DimseMessage) -> bool:
        assert isinstance(message, CEchoRQ)
        if message.message_id > answered:
            return True  # swallowed: never answered
        return answer_echo_now(assoc, context, message)

    async def main() -> float:
        async with serving(tmp_path) as app:
            app.dispatcher._inline[CEchoRQ] = until
            assoc = await _open(app.server.port)
            started = time.perf_counter()
            with pytest.raises(TimeoutExpired):
                await echo(assoc, 50, 0.5)
            took = time.perf_counter() - started
            assoc.abort()
            return took

    took = asyncio.run(asyncio.wait_for(main(), 30))
    assert 0.5 <= took < 1.5, took
