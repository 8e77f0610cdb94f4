"""The SCP loop: take each request off an association, in order, and hand it to its service.

Requests are read in the order they arrived, and an A-RELEASE-RQ queued behind them is
answered after every one of them was (some devices send several C-ECHO-RQs and the release
without waiting).

A handler may return a Completion: the part of its work that no longer needs the
association's incoming bytes (the Storage SCP: make the received instance durable, index it,
answer). Without an asynchronous operations window it is run at once, so requests are answered
one at a time (PS3.7 D.3.3.3: synchronous by default). When the window lets the peer have N
operations outstanding, up to N completions run in the background while the next requests are
read: the peer's next data set arrives while the last one is being fsynced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from netdicom.core.acse import AcceptedContext
from netdicom.core.dimse import (
    CommandReceived,
    DatasetFragment,
    DimseMessage,
    UnsupportedCommand,
)
from netdicom.core.errors import NetDicomError, RemoteProtocolError, TimeoutExpired
from netdicom.transport.association import Association, ReleaseRequested

log = logging.getLogger("netdicom.scp")

Completion = Coroutine[Any, Any, object]
Handler = Callable[[Association, AcceptedContext, DimseMessage], Awaitable[Completion | None]]
Fallback = Callable[[Association, CommandReceived], Awaitable[None]]
# Answers a request on the spot, from the protocol callback (no await): True when it did.
InlineHandler = Callable[[Association, AcceptedContext, DimseMessage], bool]


def performed_window(assoc: Association) -> int:
    """How many operations the peer may have outstanding with us (PS3.7 D.3.3.3): the
    maximum-number-operations-invoked we answered (the AC states it for the requestor);
    1 when no window was negotiated."""
    negotiated = assoc.negotiated
    window = None if negotiated is None else negotiated.async_window
    if window is None or negotiated is None or negotiated.is_requestor:
        return 1
    return max(1, window.max_invoked)


class Dispatcher:
    """`handlers` by request type; `fallback` for the rest; `inline` handlers, by request
    type, may answer a request as it arrives while the loop waits for one (a C-ECHO: no
    turn of the event loop, no task switch), and decline by returning False."""

    def __init__(
        self,
        handlers: Mapping[type, Handler],
        fallback: Fallback,
        inline: Mapping[type, InlineHandler] | None = None,
    ) -> None:
        self._handlers = dict(handlers)
        self._fallback = fallback
        self._inline = dict(inline or {})

    def _answer_inline(self, assoc: Association) -> Callable[[CommandReceived], bool]:
        accepted = assoc.negotiated.accepted if assoc.negotiated else {}
        inline = self._inline

        def answer(event: CommandReceived) -> bool:
            message = event.message
            handler = inline.get(type(message))
            context = accepted.get(event.context_id)
            if handler is None or context is None or isinstance(message, UnsupportedCommand):
                return False
            answered = handler(assoc, context, message)
            if answered:
                _count(assoc, message)
            return answered

        return answer

    async def serve(self, assoc: Association) -> None:
        negotiated = assoc.negotiated
        assert negotiated is not None
        window = performed_window(assoc)
        work = _Outstanding(assoc)
        if self._inline:
            assoc.answer_inline = self._answer_inline(assoc)
        try:
            while True:
                if work.failed():
                    return
                while len(work) >= window:
                    await work.wait_one()
                    if work.failed():
                        return
                try:
                    event = await assoc.receive()
                except NetDicomError:
                    return
                if isinstance(event, ReleaseRequested):
                    # Everything asked before the release is answered before it (PS3.8 §7.2).
                    await work.wait_all()
                    if work.failed():
                        return
                    assoc.answer_release()
                    return
                if isinstance(event, DatasetFragment):
                    # The rest of a data set whose request was already answered (refused or
                    # unsupported): nothing to do with it.
                    continue
                message = event.message
                _count(assoc, message)
                handler = self._handlers.get(type(message))
                context = negotiated.accepted.get(event.context_id)
                work.handling(True)
                try:
                    if (
                        handler is None
                        or context is None
                        or isinstance(message, UnsupportedCommand)
                    ):
                        await self._fallback(assoc, event)
                        completion = None
                    else:
                        completion = await handler(assoc, context, message)
                    if completion is not None:
                        if window == 1:
                            await completion
                        else:
                            work.start(completion)
                except NetDicomError as exc:
                    _ended(assoc, exc)
                    return
                finally:
                    work.handling(False)
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            # Instances received whole are still made durable and indexed when the peer has
            # gone (their answers are lost, not their files); a cancelled serve cancels them.
            await work.wait_all()
            work.failed()
            assoc.busy = False
            assoc.answer_inline = None


def _ended(assoc: Association, exc: NetDicomError) -> None:
    """Serving stopped on `exc`. A peer that broke the protocol (an endless identifier, a
    command inside a data set) is aborted at once with the reason, PS3.8 Table 9-26, and so is
    one that let a DIMSE timeout expire (stalled, or too slow, mid-message): left open, it
    would go on sending into a connection nobody reads."""
    log.info("association with %s ended while serving: %s", assoc.peer, exc)
    if isinstance(exc, RemoteProtocolError):
        assoc.abort(source=2, reason=exc.abort_reason)
    elif isinstance(exc, TimeoutExpired):
        assoc.abort(source=2)


class _Outstanding:
    """Completions running in the background on one association, and its busy flag (the
    idle timer spares an association that is receiving a request or has work outstanding).

    Every operation is O(1) per completion: with a window of 256 outstanding C-STOREs,
    scanning the running tasks on each request (and asyncio.wait's callback on each of them)
    had cost the event loop ~220 task checks per instance received (cProfile, tiny)."""

    __slots__ = ("_assoc", "_finished", "_handling", "_tasks", "_waiter")

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._tasks: set[asyncio.Task[object]] = set()  # running
        self._finished: list[asyncio.Task[object]] = []  # done, not yet seen by failed()
        self._handling = False
        self._waiter: asyncio.Future[None] | None = None  # serve waiting for one to end

    def __len__(self) -> int:
        return len(self._tasks)

    def handling(self, value: bool) -> None:
        self._handling = value
        self._update()

    def start(self, completion: Completion) -> None:
        task = asyncio.create_task(completion)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self._update()

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def wait_one(self) -> None:
        if self._tasks:
            await self._next_done()

    async def wait_all(self) -> None:
        while self._tasks:
            await self._next_done()

    def failed(self) -> bool:
        """Look at the completions that ended; True when one ended with the association."""
        over = False
        finished, self._finished = self._finished, []
        for task in finished:
            if task.cancelled():
                continue
            exc = task.exception()
            if isinstance(exc, NetDicomError):
                _ended(self._assoc, exc)
                over = True
            elif exc is not None:
                log.error("serving %s failed", self._assoc.peer, exc_info=exc)
                over = True
        return over

    async def _next_done(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        self._finished.append(task)
        self._update()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _update(self) -> None:
        self._assoc.busy = self._handling or bool(self._tasks)


# Message class -> its service in the log ("C-STORE"): named once per class, not per message.
_SERVICES: dict[type, str] = {UnsupportedCommand: "other"}


def _count(assoc: Association, message: object) -> None:
    """One more request of its service in `assoc.requests` ("C-STORE", "C-FIND", ...)."""
    kind = type(message)
    service = _SERVICES.get(kind)
    if service is None:
        name = kind.__name__  # CStoreRQ, CCancelRQ, ...: the DIMSE name
        service = _SERVICES[kind] = f"C-{name[1:-2].upper()}" if name.startswith("C") else name
    assoc.requests[service] = assoc.requests.get(service, 0) + 1
