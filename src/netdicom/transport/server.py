"""Acceptor side: listen, accept connections, one task per association."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from netdicom.core.acse import Negotiated
from netdicom.core.pdu import AssociateAC, AssociateRJ, AssociateRQ
from netdicom.transport.association import Association
from netdicom.transport.config import TransportConfig
from netdicom.transport.faults import FaultInjector

log = logging.getLogger("netdicom.server")

Decide = Callable[[AssociateRQ, "Server"], tuple[AssociateAC, Negotiated] | AssociateRJ]
Handler = Callable[[Association], Awaitable[None]]
FaultFactory = Callable[[], FaultInjector | None]
"""Makes the (stateful) fault injector for each new connection; tests only."""


class Server:
    """Accepts associations; `decide` answers each A-ASSOCIATE-RQ, `handler` serves it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        decide: Decide,
        handler: Handler,
        config: TransportConfig,
        on_done: Callable[[Association], None] | None = None,
        faults: FaultFactory | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.config = config
        self._decide = decide
        self._handler = handler
        self._on_done = on_done
        self._faults = faults
        self._server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.associations: set[Association] = set()

    @property
    def active_associations(self) -> int:
        return sum(1 for a in self.associations if a.negotiated is not None)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection,
            self.host,
            self.port,
            ssl=self.config.ssl_context,
            reuse_address=True,
            limit=1 << 20,
            backlog=512,
        )
        sockets = self._server.sockets
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self, grace: float = 0.0) -> None:
        """Stop accepting; give running associations `grace` seconds, then abort them."""
        if self._server is not None:
            self._server.close()
        if self.tasks and grace > 0:
            await asyncio.wait(set(self.tasks), timeout=grace)
        for assoc in list(self.associations):
            assoc.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._run(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assoc = Association(
            reader,
            writer,
            requestor=False,
            config=self.config,
            decide=lambda rq: self._decide(rq, self),
            faults=None if self._faults is None else self._faults(),
        )
        self.associations.add(assoc)
        try:
            assoc.start_acceptor()
            try:
                await assoc.wait_established(None)
            except Exception:
                await assoc.wait_closed()
                return
            try:
                await self._handler(assoc)
            except Exception:
                log.exception("error serving %s", assoc.peer)
                assoc.abort(source=2)
            await assoc.wait_closed()
        finally:
            # Cancelled (server closing) or failed: never leave the socket or reader behind.
            assoc.abort(source=2)
            self.associations.discard(assoc)
            if self._on_done is not None:
                self._on_done(assoc)
