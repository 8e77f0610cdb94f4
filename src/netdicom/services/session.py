"""Client sessions: open an association to a peer and run request/response exchanges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from netdicom.core.acse import (
    AcceptedContext,
    ProposedContext,
    build_associate_rq,
    requestor_window,
)
from netdicom.core.dimse import (
    CommandField,
    CommandReceived,
    DatasetFragment,
    DimseMessage,
    UnsupportedCommand,
)
from netdicom.core.errors import (
    AssociationRejected,
    CancelIgnored,
    ConnectionClosed,
    LocalProtocolError,
    NoAcceptedContext,
    RemoteProtocolError,
    TimeoutExpired,
)
from netdicom.core.pdu import AsyncOpsWindow, SOPClassExtendedNegotiation, UserIdentityRQ
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.services.peer import Peer
from netdicom.transport.association import Association, ReleaseRequested
from netdicom.transport.client import associate
from netdicom.transport.config import TransportConfig

if TYPE_CHECKING:
    # Tests only (fault injection): not imported on a real run.
    from netdicom.transport.faults import FaultInjector

log = logging.getLogger("netdicom.session")

DEFAULT_CALLING_AE = "NETDICOM"
DEFAULT_CALLED_AE = "ANY-SCP"


@frozen
class ClientOptions:
    calling_ae: str = DEFAULT_CALLING_AE
    called_ae: str = DEFAULT_CALLED_AE
    transport: TransportConfig = field(default_factory=TransportConfig)
    user_identity: UserIdentityRQ | None = None
    # Where calling_ae came from ("--aet", "$NETDICOM_AET", a configuration file...), said
    # when a peer rejects it: five places can set it, and the user must know which to change.
    calling_ae_origin: str | None = None


async def open_association(
    peer: Peer,
    options: ClientOptions,
    contexts: Sequence[ProposedContext],
    *,
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    faults: FaultInjector | None = None,
    window: int = 1,
    extended: Sequence[SOPClassExtendedNegotiation] = (),
) -> Association:
    """Open an association proposing `contexts`. `window` > 1 proposes an asynchronous
    operations window (PS3.7 D.3.3.3): up to `window` requests outstanding from us, none
    performed for the peer; the peer's answer is in `negotiated_window`."""
    if options.calling_ae_origin is not None:
        from netdicom.core.acse.validation import clean_ae_title

        try:
            clean_ae_title(options.calling_ae, "calling")
        except LocalProtocolError as exc:
            # Which of five places holds the bad title (walkthrough 7a).
            raise LocalProtocolError(f"{exc} (from {options.calling_ae_origin})") from None
    rq = build_associate_rq(
        calling_ae=options.calling_ae,
        called_ae=peer.ae_title or options.called_ae,
        contexts=contexts,
        max_pdu=options.transport.max_pdu,
        roles=roles or {},
        user_identity=options.user_identity,
        async_window=AsyncOpsWindow(max_invoked=window, max_performed=1) if window > 1 else None,
        extended=extended,
    )
    try:
        assoc = await associate(peer.host, peer.port, rq, options.transport, faults=faults)
    except AssociationRejected as exc:
        raise _naming_titles(exc, rq.calling_ae_title, rq.called_ae_title, options) from None
    identity = options.user_identity
    negotiated = assoc.negotiated
    if (
        identity is not None
        and identity.positive_response_requested
        and negotiated is not None
        and negotiated.user_identity_response is None
    ):
        # PS3.7 D.3.3.7: an acceptor that does not support identity negotiation accepts
        # without a response; the requestor decides whether to go on. We go on, and say so.
        log.warning("%s accepted without confirming the user identity: it may not check it", peer)
    return assoc


def _naming_titles(
    exc: AssociationRejected, calling: str, called: str, options: ClientOptions
) -> AssociationRejected:
    """A rejection for an AE title, saying which title was sent (and where ours came from):
    the user fixes the setting, the peer's administrator the list, and either needs the
    exact title (walkthrough 7a)."""
    if exc.source != 1 or exc.reason not in (3, 7):
        return exc
    if exc.reason == 3:
        origin = f", from {options.calling_ae_origin}" if options.calling_ae_origin else ""
        sent = f"we called as {quoted(calling.strip())}{origin}"
    else:
        sent = f"we called {quoted(called.strip())}"
    return AssociationRejected(exc.result, exc.source, exc.reason, f"{exc} ({sent})")


def negotiated_window(assoc: Association) -> int:
    """How many requests we may have outstanding on `assoc` as requestor: the
    maximum-number-operations-invoked of the A-ASSOCIATE-AC, which the acceptor states for
    us (PS3.7 D.3.3.3), never more than we proposed; 1 (synchronous) when it did not answer
    the window (0 would mean unlimited: we keep ours)."""
    negotiated = assoc.negotiated
    rq = assoc.associate_rq
    if negotiated is None or rq is None:
        return 1
    return requestor_window(rq.user_information.async_ops_window, negotiated.async_window)


def require_context(assoc: Association, abstract_syntax: str) -> AcceptedContext:
    """The accepted context for `abstract_syntax`, or NoAcceptedContext saying why not."""
    negotiated = assoc.negotiated
    assert negotiated is not None
    ctx = negotiated.context_for(abstract_syntax)
    if ctx is not None:
        return ctx
    reasons = [r.describe() for r in negotiated.rejected if r.abstract_syntax == abstract_syntax]
    detail = "; ".join(reasons) or "it was not proposed"
    raise NoAcceptedContext(f"the peer accepted no presentation context for it: {detail}")


async def next_command(
    assoc: Association, timeout: float | None
) -> DimseMessage | UnsupportedCommand:
    """The peer's next command, awaited for a response; a release request met on the way is
    answered (PS3.8 AR-2: the user may only accept it), and the request we wait on is then
    left unanswered for good: ConnectionClosed says so in those words. A data set fragment
    here breaks the protocol."""
    while True:
        event = await assoc.receive(timeout)
        if isinstance(event, ReleaseRequested):
            assoc.answer_release()
            raise ConnectionClosed(
                f"{assoc.peer} released the association (A-RELEASE-RQ) before answering "
                "what we had sent"
            )
        if isinstance(event, DatasetFragment):
            raise RemoteProtocolError("data set fragment without a command")
        return event.message


T = TypeVar("T")


class CancellableReceiver(Generic[T]):
    """What `receive(wait)` gives, one at a time, while watching a `cancel` event (Ctrl-C);
    the C-FIND, C-GET and C-MOVE SCUs read their responses through it.

    `next()` returns None (once) when `cancel` is set, whenever it was set: also between two
    calls, e.g. from a signal handler; the receive under way is kept for the next call. Once
    the caller's C-CANCEL-RQ is out (`cancelled()`), the peer has `grace` seconds to end the
    operation, whatever it sends meanwhile: then CancelIgnored (a fixed grace, so --timeout,
    which restarts on every response, cannot let a peer that ignores the cancel go on)."""

    def __init__(
        self,
        receive: Callable[[float | None], Awaitable[T]],
        cancel: asyncio.Event | None,
        *,
        response: str,
        grace: float = 5.0,
    ) -> None:
        self._receive = receive
        self._cancel = cancel
        self._response = response  # "C-FIND-RSP", for the message
        self._grace = grace
        self._task: asyncio.Future[T] | None = None
        self._signalled = False
        self._deadline: float | None = None

    def cancelled(self) -> None:
        """Our C-CANCEL-RQ went: the grace starts."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._grace

    async def next(self, timeout: float | None) -> T | None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._receive(timeout))
        if self._cancel is not None and self._cancel.is_set() and not self._signalled:
            self._signalled = True
            return None  # the pending receive is kept for the next call
        watched: set[asyncio.Future[Any]] = {self._task}
        waiter = None
        if self._cancel is not None and not self._signalled:
            waiter = asyncio.ensure_future(self._cancel.wait())
            watched.add(waiter)
        left = None
        if self._deadline is not None:
            left = max(0.0, self._deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait(watched, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waiter is not None:
                waiter.cancel()
        task = self._task
        if not task.done():
            if waiter is not None and waiter.done():
                self._signalled = True
                return None
            raise self._ignored()
        self._task = None
        try:
            return task.result()
        except TimeoutExpired:
            if self._deadline is not None:
                raise self._ignored() from None
            raise

    def _ignored(self) -> CancelIgnored:
        return CancelIgnored(
            f"the peer ignored our C-CANCEL-RQ: no final {self._response} within "
            f"{self._grace:g} s of it; aborted"
        )

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


def command_name(message: DimseMessage | UnsupportedCommand) -> str:
    """What arrived, by its DIMSE name, for messages: "a C-STORE-RQ", "an N-GET-RSP", "a
    command we do not know (command field 0x7777)"; never a class name of ours."""
    field = message.command_field
    try:
        name = CommandField(field).name.replace("_", "-")
    except ValueError:
        return f"a command we do not know (command field 0x{field:04X})"
    return f"{'an' if name.startswith('N') else 'a'} {name}"


def responded_to(message: DimseMessage | UnsupportedCommand, expected: int) -> None:
    """Raise unless `message` is a response to message `expected`."""
    # A request, or a command we do not decode, has no Message ID Being Responded To: say
    # what came instead of comparing a missing ID.
    if isinstance(message, UnsupportedCommand) or not message.command_field & 0x8000:
        raise RemoteProtocolError(
            f"expected a response to message {expected}, got {command_name(message)}",
            field="Command Field",
        )
    responded = getattr(message, "message_id_being_responded_to", None)
    if responded != expected:
        raise RemoteProtocolError(
            f"expected a response to message {expected}, got {command_name(message)} to "
            f"message {responded}",
            field="Message ID Being Responded To",
        )


async def receive_response(
    assoc: Association, message_id: int, timeout: float | None
) -> tuple[DimseMessage, bytes | None]:
    """The next response to `message_id` with its data set (small ones only: identifiers)."""
    message = await next_command(assoc, timeout)
    responded_to(message, message_id)
    assert not isinstance(message, UnsupportedCommand)  # responded_to raised for it
    dataset: bytes | None = None
    if message.has_dataset:
        dataset = await assoc.receive_dataset(timeout)
    return message, dataset


__all__ = [
    "DEFAULT_CALLED_AE",
    "DEFAULT_CALLING_AE",
    "ClientOptions",
    "CommandReceived",
    "command_name",
    "negotiated_window",
    "next_command",
    "open_association",
    "receive_response",
    "require_context",
    "responded_to",
]
