"""Acceptor side: listen, accept connections, one task per association."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

from netdicom.core.acse import Negotiated
from netdicom.core.address import host_port
from netdicom.core.errors import ListenFailed
from netdicom.core.pdu import AssociateAC, AssociateRJ, AssociateRQ
from netdicom.transport.association import Association
from netdicom.transport.config import TransportConfig
from netdicom.transport.faults import FaultInjector

log = logging.getLogger("netdicom.server")

# Connections at once that have not associated yet (see Server._admit): with MAX_OTHER_PDU,
# what requests in progress hold stays in the order of 100 MiB.
_MAX_PENDING = 256
# Associations aborted by us and waiting for their peer to close (see Server._trim_lingering).
_MAX_LINGERING = 64

DecideResult = tuple[AssociateAC, Negotiated] | AssociateRJ
Decide = Callable[[AssociateRQ, "Server"], DecideResult]
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
        # Connections waiting for their A-ASSOCIATE-RQ (or our answer), oldest first.
        self._pending: dict[Association, None] = {}
        # The association whose A-ASSOCIATE-RQ `decide` is answering; set only during that
        # call, so that a policy can look at the peer's address (e.g. --allow AE@HOST).
        self.deciding: Association | None = None

    @property
    def active_associations(self) -> int:
        return sum(1 for a in self.associations if a.negotiated is not None and not a.lingering)

    async def start(self) -> None:
        """Listen; raises ListenFailed saying why not."""
        try:
            self._server = await asyncio.start_server(
                self._on_connection,
                self.host,
                self.port,
                # TLS is started per connection in _run, so that a failed handshake is logged
                # with the peer's address and bounded by ARTIM.
                reuse_address=True,
                limit=1 << 20,
                backlog=512,
            )
        except OSError as exc:
            raise ListenFailed(_listen_failure(self.host, self.port, exc)) from exc
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
        for assoc in list(self.associations):
            if assoc.lingering:
                assoc.abort()  # aborted already, only waiting for the peer to close: close now
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

    def _trim_lingering(self) -> None:
        """At most _MAX_LINGERING associations wait after our A-ABORT for their peer to close
        (Sta13): they hold no --max-associations slot, so without a bound a client that
        makes serve abort it over and over held 3,000 sockets open (and their memory) at
        ARTIM each. Beyond the bound, lingering ones are closed at once, as before Sta13."""
        lingering = [assoc for assoc in self.associations if assoc.lingering]
        for assoc in lingering[: max(0, len(lingering) - _MAX_LINGERING)]:
            assoc.abort()  # a second abort closes at once

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._trim_lingering()
        if self.config.ssl_context is not None:
            # Called from connection_made, before the first read: nothing can reach the plain
            # stream before _start_tls hands the socket to the TLS layer.
            transport = writer.transport
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()
        task = asyncio.create_task(self._run(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _admit(self, assoc: Association) -> None:
        """Count `assoc` among the connections not yet associated; beyond _MAX_PENDING the
        oldest of them is dropped. Each may hold up to MAX_OTHER_PDU of a partial
        A-ASSOCIATE-RQ until ARTIM: without a bound, many peers sending a large request slowly
        add up (400 held 490 MB), and --max-associations counts only associations. The oldest
        goes, not the newcomer: a peer that is really associating does so in milliseconds."""
        self._pending[assoc] = None
        if len(self._pending) > _MAX_PENDING:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            log.warning(
                "%d connections without an association: dropping the oldest, %s",
                _MAX_PENDING,
                oldest.peer,
            )
            oldest.drop_connection()

    def _decide_for(self, assoc: Association, rq: AssociateRQ) -> DecideResult:
        self.deciding = assoc
        try:
            return self._decide(rq, self)
        finally:
            self.deciding = None

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.config.ssl_context is not None and not await self._start_tls(writer):
            return
        assoc: Association = Association(
            reader,
            writer,
            requestor=False,
            config=self.config,
            decide=lambda rq: self._decide_for(assoc, rq),
            faults=None if self._faults is None else self._faults(),
        )
        self.associations.add(assoc)
        self._admit(assoc)
        try:
            assoc.start_acceptor()
            try:
                await assoc.wait_established(None)
            except Exception:
                await assoc.wait_closed()
                return
            finally:
                self._pending.pop(assoc, None)
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

    async def _start_tls(self, writer: asyncio.StreamWriter) -> bool:
        """The server side of the TLS handshake, bounded by ARTIM; False (logged) on failure."""
        assert self.config.ssl_context is not None
        peer = writer.get_extra_info("peername")
        where = host_port(peer[0], peer[1]) if isinstance(peer, tuple) else str(peer)
        try:
            await asyncio.wait_for(
                writer.start_tls(self.config.ssl_context), self.config.timeouts.artim
            )
            return True
        except TimeoutError:
            log.warning(
                "TLS handshake with %s: no handshake within %g s", where, self.config.timeouts.artim
            )
        except (ssl.SSLError, OSError) as exc:
            reason = (
                getattr(exc, "verify_message", None)
                or getattr(exc, "reason", None)
                or getattr(exc, "strerror", None)
                or type(exc).__name__
            )
            log.warning("TLS handshake with %s failed: %s", where, reason)
        except BaseException:  # cancelled (server closing): never leave the socket behind
            writer.transport.abort()
            raise
        writer.transport.abort()
        return False


def check_listen(host: str, port: int) -> None:
    """Raise ListenFailed now if `host:port` cannot be listened on: serve asks before it
    opens (or rebuilds) the index, which can take minutes on a large archive, and only then
    learned that another server had the port. Binding is tried, then released at once; the
    real listener comes moments later (a port taken in between still fails, in start())."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in infos:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as exc:
        raise ListenFailed(_listen_failure(host, port, exc)) from exc


def _listen_failure(host: str, port: int, exc: OSError) -> str:
    where = f"cannot listen on {host_port(host, port)}"
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host ({exc.strerror})"
    reason = {
        errno.EADDRINUSE: "the port is in use (another server on it?)",
        errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        errno.EADDRNOTAVAIL: "that address is not one of this machine's",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{where}: {reason}"
