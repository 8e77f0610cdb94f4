"""The failure response to any request, for a service or context that cannot serve it."""

from __future__ import annotations

from netdicom.core.dimse import (
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CommandReceived,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    UnsupportedCommand,
    encode_unsupported_response,
    status,
)
from netdicom.transport.association import Association


def peer_comment(comment: str | None, offending: tuple[int, ...] = ()) -> str | None:
    """The peer's Error Comment, with the Offending Element it named (PS3.7 C.4: the key or
    attribute it objected to): decoded and never shown, the user could not tell which key
    to fix (walkthrough 7c)."""
    if not offending:
        return comment
    from pydicom.datadict import keyword_for_tag

    named = ", ".join(
        f"({tag >> 16:04X},{tag & 0xFFFF:04X})" + (f" {kw}" if (kw := keyword_for_tag(tag)) else "")
        for tag in offending
    )
    said = f"offending element {named}"
    return f"{comment}; {said}" if comment else said


def failure_response(
    request: DimseMessage, code: int, comment: str | None = None
) -> DimseMessage | None:
    """The response carrying `code` for `request`; None for messages that get no response."""
    if isinstance(request, CEchoRQ):
        return CEchoRSP(request.message_id, code, request.affected_sop_class_uid, comment)
    if isinstance(request, CStoreRQ):
        return CStoreRSP(
            request.message_id,
            code,
            request.affected_sop_class_uid,
            request.affected_sop_instance_uid,
            error_comment=comment,
        )
    if isinstance(request, CFindRQ):
        return CFindRSP(
            request.message_id, code, request.affected_sop_class_uid, error_comment=comment
        )
    if isinstance(request, CGetRQ):
        return CGetRSP(
            request.message_id, code, request.affected_sop_class_uid, error_comment=comment
        )
    if isinstance(request, CMoveRQ):
        return CMoveRSP(
            request.message_id, code, request.affected_sop_class_uid, error_comment=comment
        )
    return None


async def refuse(assoc: Association, event: CommandReceived) -> None:
    """Answer a request nobody serves on its context: a failure status, never an abort (the
    dispatcher's fallback). N-services and unknown commands get 0211 Unrecognized operation,
    other requests 0122 SOP class not supported (PS3.7 Annex C)."""
    message = event.message
    if isinstance(message, UnsupportedCommand):
        if message.is_request and message.message_id is not None:
            await assoc.send_message(event.context_id, encode_unsupported_response(message))
        return
    response = failure_response(message, status.SOP_CLASS_NOT_SUPPORTED)
    if response is not None:
        await assoc.send_message(event.context_id, response)
