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
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
)


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
