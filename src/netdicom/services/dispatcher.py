"""The SCP loop: take each request off an association, in order, and hand it to its service.

Requests are answered in the order they arrived, and an A-RELEASE-RQ queued behind them is
answered after them (some devices send several C-ECHO-RQs and the release without waiting).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from netdicom.core.acse import AcceptedContext
from netdicom.core.dimse import (
    CommandReceived,
    DatasetFragment,
    DimseMessage,
    UnsupportedCommand,
)
from netdicom.core.errors import NetDicomError
from netdicom.transport.association import Association, ReleaseRequested

log = logging.getLogger("netdicom.scp")

Handler = Callable[[Association, AcceptedContext, DimseMessage], Awaitable[None]]
Fallback = Callable[[Association, CommandReceived], Awaitable[None]]


class Dispatcher:
    def __init__(self, handlers: Mapping[type, Handler], fallback: Fallback) -> None:
        self._handlers = dict(handlers)
        self._fallback = fallback

    async def serve(self, assoc: Association) -> None:
        negotiated = assoc.negotiated
        assert negotiated is not None
        while True:
            try:
                event = await assoc.receive()
            except NetDicomError:
                return
            if isinstance(event, ReleaseRequested):
                assoc.answer_release()
                return
            if isinstance(event, DatasetFragment):
                # The rest of a data set whose request was already answered (refused or
                # unsupported): nothing to do with it.
                continue
            message = event.message
            handler = self._handlers.get(type(message))
            context = negotiated.accepted.get(event.context_id)
            assoc.busy = True
            try:
                if handler is None or context is None or isinstance(message, UnsupportedCommand):
                    await self._fallback(assoc, event)
                else:
                    await handler(assoc, context, message)
            except NetDicomError as exc:
                log.info("association with %s ended while serving: %s", assoc.peer, exc)
                return
            finally:
                assoc.busy = False
