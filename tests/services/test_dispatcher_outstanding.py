"""The dispatcher's bookkeeping of completions running in the background (an asynchronous
operations window): the busy flag the idle timer reads, waiting for one or all, and a
completion that ended the association is reported once."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from netdicom.core.errors import ConnectionClosed
from netdicom.services.dispatcher import _Outstanding
from netdicom.transport.association import Association


class _Assoc:
    busy = False
    peer = "127.0.0.1:1"


async def _gate(event: asyncio.Event, fail: BaseException | None = None) -> None:
    await event.wait()
    if fail is not None:
        raise fail


def test_busy_while_anything_runs_or_a_request_is_handled() -> None:
    async def main() -> None:
        assoc = _Assoc()
        work = _Outstanding(cast(Association, assoc))
        gates = [asyncio.Event() for _ in range(3)]
        for gate in gates:
            work.start(_gate(gate))
        assert len(work) == 3 and assoc.busy
        gates[1].set()
        await work.wait_one()
        assert len(work) == 2 and assoc.busy and not work.failed()
        work.handling(True)
        for gate in (gates[0], gates[2]):
            gate.set()
        await work.wait_all()
        assert len(work) == 0 and assoc.busy  # still handling a request
        work.handling(False)
        assert not assoc.busy

    asyncio.run(main())


def test_a_completion_that_ended_the_association_is_reported_once() -> None:
    async def main() -> None:
        assoc = _Assoc()
        work = _Outstanding(cast(Association, assoc))
        ok, bad = asyncio.Event(), asyncio.Event()
        work.start(_gate(ok))
        work.start(_gate(bad, ConnectionClosed("peer went away")))
        bad.set()
        await work.wait_one()
        assert work.failed()
        assert not work.failed()  # looked at once
        ok.set()
        await work.wait_all()
        assert not work.failed() and not assoc.busy

    asyncio.run(main())


def test_cancel_ends_what_runs_and_wait_all_returns() -> None:
    async def main() -> list[Any]:
        assoc = _Assoc()
        work = _Outstanding(cast(Association, assoc))
        never = asyncio.Event()
        tasks_before = len(asyncio.all_tasks())
        for _ in range(5):
            work.start(_gate(never))
        work.cancel()
        await asyncio.wait_for(work.wait_all(), 2)
        assert len(work) == 0 and not assoc.busy and not work.failed()
        return [len(asyncio.all_tasks()) - tasks_before]

    assert asyncio.run(main()) == [0]
