"""Query/Retrieve C-MOVE SCU (PS3.4 C.4.2), and the storage receiver of "move to myself".

`move` sends one C-MOVE-RQ and follows the pending responses to the final one. The peer sends
the instances on associations of its own to the Move Destination, an AE title it must know
(else A801).

`MoveReceiver` is a small Storage SCP started before the C-MOVE (`netdicom move --listen`): it
accepts sub-associations from any calling AE, stores what arrives like serve does, and ties
each arrival to our request by its Move Originator Message ID (PS3.7 §9.3.1.1). It finishes
after the final C-MOVE-RSP, once the open sub-associations are done or a grace period ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from netdicom.archive.layout import DEFAULT_LAYOUT, Layout
from netdicom.archive.matching import Model
from netdicom.archive.writer import Archive, DuplicatePolicy
from netdicom.core import uids
from netdicom.core.acse import (
    AcceptedContext,
    AcceptorPolicy,
    Negotiated,
    default_chooser,
    negotiate_acceptor,
)
from netdicom.core.dimse import (
    CCancelRQ,
    CEchoRQ,
    CMoveRQ,
    CMoveRSP,
    CommandReceived,
    CStoreRQ,
    DatasetFragment,
    DimseMessage,
    status,
)
from netdicom.core.errors import NetDicomError, RemoteProtocolError
from netdicom.core.pdu import AssociateAC, AssociateRJ, AssociateRQ, ContextResult
from netdicom.services.dispatcher import Dispatcher
from netdicom.services.echo import handle_echo
from netdicom.services.find_scp import encode_identifier
from netdicom.services.get_scu import take_response
from netdicom.services.responses import refuse
from netdicom.services.retrieve_common import (
    CountProblem,
    Kept,
    OnProgress,
    Progress,
    Received,
    RetrieveOutcome,
    RetrieveRequest,
    cut_off,
    sop_class_for,
)
from netdicom.services.session import CancellableReceiver, require_context
from netdicom.services.store_scp import StorageSCP, storage_chooser
from netdicom.transport.association import Association, ReleaseRequested
from netdicom.transport.config import TransportConfig
from netdicom.transport.server import Server

log = logging.getLogger("netdicom.move")


async def move(
    assoc: Association,
    model: Model,
    identifier: object,
    destination: str,
    *,
    on_progress: OnProgress | None = None,
    on_request: Callable[[int], None] | None = None,
    cancel: asyncio.Event | None = None,
    timeout: float | None = None,
    cancel_grace: float = 5.0,
) -> RetrieveOutcome:
    """Send one C-MOVE-RQ to `destination` and follow it to the final C-MOVE-RSP.

    `on_request(message_id)` is called just before the request goes out (the receiver of a
    move to ourselves ties arrivals to it)."""
    sop_class = sop_class_for("move", model)
    ctx = require_context(assoc, sop_class)
    message_id = assoc.message_ids.next()
    if on_request is not None:
        on_request(message_id)
    await assoc.send_message(
        ctx.context_id,
        CMoveRQ(message_id, sop_class, destination),
        encode_identifier(identifier, ctx.transfer_syntax),
    )
    outcome = RetrieveOutcome(status.PENDING, Progress(None, None, None, None))
    receiver = CancellableReceiver(assoc.receive, cancel, response="C-MOVE-RSP", grace=cancel_grace)
    try:
        while True:
            event = await receiver.next(timeout)
            if event is None:
                if not outcome.cancelled:
                    outcome.cancelled = True
                    await assoc.send_message(ctx.context_id, CCancelRQ(message_id))
                    receiver.cancelled()
                continue
            if isinstance(event, ReleaseRequested):
                assoc.answer_release()
                raise RemoteProtocolError("the peer released the association during its C-MOVE")
            if isinstance(event, DatasetFragment):
                continue
            assert isinstance(event, CommandReceived)
            message = event.message
            final = await take_response(
                assoc,
                message,
                CMoveRSP,
                message_id,
                ctx.transfer_syntax,
                outcome,
                on_progress,
                timeout,
            )
            if final:
                return outcome
    finally:
        receiver.close()
        assoc.message_ids.release(message_id)


class MoveReceiver:
    """A Storage SCP for the sub-operations of our own C-MOVE (see the module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        ae_title: str,
        host: str = "0.0.0.0",
        port: int = 0,
        layout: str = DEFAULT_LAYOUT,
        transport: TransportConfig | None = None,
        fsync: bool = True,
        on_received: Callable[[Received], None] | None = None,
        on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP,
    ) -> None:
        self.ae_title = ae_title
        self.archive = Archive(directory, fsync=fsync, on_duplicate=on_duplicate, temp_shared=True)
        self.archive.sweep()
        self.storage = StorageSCP(self.archive, Layout.parse(layout))
        self._kept = Kept(self.storage)
        self.received: list[Received] = []
        self.unattributed = 0  # arrivals naming another (or no) originating request
        # Called AE titles of sub-associations that were not ours: accepted (the instances
        # are what was asked for), and said, since it is what a misconfigured peer does.
        self.other_called: set[str] = set()
        self.not_dicom: list[str] = []  # connections that sent no valid A-ASSOCIATE-RQ
        self.associations = 0  # sub-associations served
        # What those sub-associations' negotiation refused ("CT Image Storage: transfer
        # syntaxes not supported"): said when the peer connected and could send nothing.
        self.refused_contexts: list[str] = []
        self.expected: tuple[str, int] | None = None  # (our AE title, our message ID)
        self.started = False  # listening: finish() has a server to stop
        self._on_received = on_received
        storage = storage_chooser(accept_unknown=True)
        verification = default_chooser({uids.VERIFICATION: (uids.IMPLICIT_VR_LE,)})

        def choose(abstract_syntax: str, offered: tuple[str, ...]) -> str | ContextResult:
            if abstract_syntax == uids.VERIFICATION:
                return verification(abstract_syntax, offered)
            return storage(abstract_syntax, offered)

        # Any calling AE: the peer's C-MOVE SCP may call with a title of its own choosing.
        self.policy = AcceptorPolicy(
            ae_title=ae_title,
            transfer_syntax_chooser=choose,
            max_pdu=(transport or TransportConfig()).max_pdu,
        )
        self._dispatcher = Dispatcher({CEchoRQ: handle_echo, CStoreRQ: self._store}, refuse)
        self.server = Server(
            host,
            port,
            decide=self._decide,
            handler=self._dispatcher.serve,
            config=transport or TransportConfig(),
            on_done=self._done,
        )

    def _done(self, assoc: Association) -> None:
        if assoc.negotiated is not None:
            self.associations += 1
            for context in assoc.negotiated.rejected:
                described = context.describe()
                if described not in self.refused_contexts:
                    self.refused_contexts.append(described)
            log.info("sub-association from %s: %s", assoc.peer, assoc.outcome)
        elif assoc.outcome.startswith("aborted: invalid PDU"):
            # Not DICOM (a scanner, garbage): the move goes on; the user hears of it.
            self.not_dicom.append(f"{assoc.peer}: {assoc.outcome}")

    @property
    def port(self) -> int:
        return self.server.port

    def _decide(
        self, rq: AssociateRQ, server: Server
    ) -> tuple[AssociateAC, Negotiated] | AssociateRJ:
        called = rq.called_ae_title.strip(" ")
        if called != self.ae_title:
            self.other_called.add(called)
        return negotiate_acceptor(rq, self.policy)

    async def start(self) -> None:
        await self.server.start()
        self.started = True

    async def _store(
        self, assoc: Association, context: AcceptedContext, message: DimseMessage
    ) -> None:
        assert isinstance(message, CStoreRQ)
        try:
            response = await self.storage.answer(assoc, context, message)
        except NetDicomError as exc:
            # The sub-association ended during its data set: listed as not stored.
            self.received.append(cut_off(message, exc))
            raise
        received = Received(
            message.affected_sop_class_uid,
            message.affected_sop_instance_uid,
            response.status,
            response.error_comment,
        )
        ours = self.expected is None or message.move_originator_message_id == self.expected[1]
        if not ours:
            self.unattributed += 1
            log.info(
                "%s from %s names move request %s, not ours (%s): stored anyway",
                message.affected_sop_instance_uid,
                assoc.peer,
                message.move_originator_message_id,
                None if self.expected is None else self.expected[1],
            )
        self.received.append(received)
        if self._on_received is not None:
            self._on_received(received)

    def not_asked_for(self, requests: Sequence[RetrieveRequest]) -> list[CountProblem]:
        """Instances stored here that no request named (Kept.not_asked_for)."""
        return self._kept.not_asked_for(requests)

    async def finish(self, grace: float) -> None:
        """Wait up to `grace` seconds for open sub-associations to end, then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.server.associations and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await self.server.close()
        # An instance in place whose C-STORE-RSP the close kept from being sent is on disk:
        # it counts as received.
        self._kept.count_in(self.received)


__all__ = ["MoveReceiver", "move"]
