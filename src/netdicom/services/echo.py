"""Verification service (PS3.4 Annex A): C-ECHO as SCU, and the SCP's answer."""

from __future__ import annotations

import time

from netdicom.core import uids
from netdicom.core.acse import AcceptedContext, ProposedContext
from netdicom.core.dimse import (
    CEchoRQ,
    CEchoRSP,
    CommandReceived,
    DimseMessage,
    UnsupportedCommand,
    status,
)
from netdicom.core.errors import RemoteProtocolError, TimeoutExpired
from netdicom.core.records import frozen
from netdicom.services.session import (
    command_name,
    next_command,
    require_context,
    responded_to,
)
from netdicom.transport.association import Association

ECHO_CONTEXTS = (ProposedContext(uids.VERIFICATION, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),)


@frozen
class EchoReply:
    status: int
    seconds: float
    error_comment: str | None = None  # the peer's explanation of a failure, if it gave one


async def echo(
    assoc: Association,
    count: int,
    timeout: float | None,
    replies: list[EchoReply] | None = None,
) -> list[EchoReply]:
    """Send `count` C-ECHO-RQs one after another on one association.

    `timeout` is the DIMSE timeout: how long to wait for each response. A round trip is timed
    from the request's write to its response's arrival; with `count` > 1 each next request is
    written as soon as a response arrives, from the association's callback (see `_Chain`), so
    what is measured is the peer and the network, not a switch between tasks.

    `replies`: the list to append the replies to as they come (what is left of them when
    the caller is cancelled); by default a new one."""
    ctx = require_context(assoc, uids.VERIFICATION)
    if replies is None:
        replies = []
    count += len(replies)
    chain = _Chain(assoc, ctx.context_id, count, replies)
    if count > 1 and assoc.answer_inline is None:
        assoc.answer_inline = chain.answer
    try:
        while len(replies) < count:
            message_id = assoc.message_ids.next()
            chain.sent(message_id)
            request = CEchoRQ(message_id)
            if not assoc.send_now(ctx.context_id, request):
                await assoc.send_message(ctx.context_id, request)
            chain.answered(await _next_response(assoc, chain, timeout))
    finally:
        if assoc.answer_inline == chain.answer:
            assoc.answer_inline = None
    return replies


async def _next_response(
    assoc: Association, chain: _Chain, timeout: float | None
) -> DimseMessage | UnsupportedCommand:
    """The response `chain` declined: to its current request (which the chain may have
    changed while we waited: it answers responses without waking us, so only a silence as
    long as the timeout since its last request is a timeout)."""
    wait = timeout
    while True:
        try:
            message = await next_command(assoc, wait)
        except TimeoutExpired:
            if timeout is None:
                raise
            wait = timeout - (time.perf_counter() - chain.started)
            if wait <= 0:
                raise
            continue
        responded_to(message, chain.message_id)
        return message


class _Chain:
    """Answers each C-ECHO-RSP of `echo` in the association's callback by writing the next
    C-ECHO-RQ at once; declines (the response then reaches `echo` through the queue) for the
    last one, anything unexpected, or when the request cannot be written without waiting."""

    __slots__ = ("_assoc", "_context_id", "_count", "_replies", "message_id", "started")

    def __init__(
        self, assoc: Association, context_id: int, count: int, replies: list[EchoReply]
    ) -> None:
        self._assoc = assoc
        self._context_id = context_id
        self._count = count
        self._replies = replies
        self.message_id = 0
        self.started = 0.0

    def sent(self, message_id: int) -> None:
        self.message_id = message_id
        self.started = time.perf_counter()

    def answered(self, response: DimseMessage | UnsupportedCommand) -> None:
        elapsed = time.perf_counter() - self.started
        self._assoc.message_ids.release(self.message_id)
        if not isinstance(response, CEchoRSP):
            raise RemoteProtocolError(f"expected a C-ECHO-RSP, got {command_name(response)}")
        self._replies.append(EchoReply(response.status, elapsed, response.error_comment))

    def answer(self, event: CommandReceived) -> bool:
        response = event.message
        if (
            not isinstance(response, CEchoRSP)
            or response.message_id_being_responded_to != self.message_id
            or len(self._replies) + 1 >= self._count
        ):
            return False
        arrived = time.perf_counter()
        assoc = self._assoc
        next_id = assoc.message_ids.next()
        if not assoc.send_now(self._context_id, CEchoRQ(next_id)):
            assoc.message_ids.release(next_id)
            return False
        assoc.message_ids.release(self.message_id)
        self._replies.append(
            EchoReply(response.status, arrived - self.started, response.error_comment)
        )
        self.message_id = next_id
        self.started = time.perf_counter()
        return True


def _echo_response(context: AcceptedContext, message: DimseMessage) -> CEchoRSP:
    """C-ECHO SCP: success on a Verification context, 0122 (SOP class not supported) elsewhere."""
    assert isinstance(message, CEchoRQ)
    ok = context.abstract_syntax == uids.VERIFICATION == message.affected_sop_class_uid
    return CEchoRSP(
        message.message_id,
        status.SUCCESS if ok else status.SOP_CLASS_NOT_SUPPORTED,
        affected_sop_class_uid=message.affected_sop_class_uid,
    )


async def handle_echo(assoc: Association, context: AcceptedContext, message: DimseMessage) -> None:
    await assoc.send_message(context.context_id, _echo_response(context, message))


def answer_echo_now(assoc: Association, context: AcceptedContext, message: DimseMessage) -> bool:
    """The same answer, sent from the protocol callback when the association can take it at
    once (the dispatcher's inline handler); False leaves the request to handle_echo."""
    return assoc.send_now(context.context_id, _echo_response(context, message))
