"""Verification service (PS3.4 Annex A): C-ECHO as SCU."""

from __future__ import annotations

import time
from dataclasses import dataclass

from netdicom.core import uids
from netdicom.core.acse import AcceptedContext, ProposedContext
from netdicom.core.dimse import CEchoRQ, CEchoRSP, DimseMessage, status
from netdicom.core.errors import RemoteProtocolError
from netdicom.services.session import receive_response, require_context
from netdicom.transport.association import Association

ECHO_CONTEXTS = (ProposedContext(uids.VERIFICATION, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),)


@dataclass(frozen=True, slots=True)
class EchoReply:
    status: int
    seconds: float


async def echo(assoc: Association, count: int, timeout: float | None) -> list[EchoReply]:
    """Send `count` C-ECHO-RQs one after another on one association."""
    ctx = require_context(assoc, uids.VERIFICATION)
    replies: list[EchoReply] = []
    for _ in range(count):
        message_id = assoc.message_ids.next()
        started = time.perf_counter()
        request = CEchoRQ(message_id)
        if not assoc.send_now(ctx.context_id, request):
            await assoc.send_message(ctx.context_id, request)
        response, _ = await receive_response(assoc, message_id, timeout)
        elapsed = time.perf_counter() - started
        assoc.message_ids.release(message_id)
        if not isinstance(response, CEchoRSP):
            raise RemoteProtocolError(f"expected C-ECHO-RSP, got {type(response).__name__}")
        replies.append(EchoReply(response.status, elapsed))
    return replies


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
