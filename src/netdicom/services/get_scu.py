"""Query/Retrieve C-GET SCU (PS3.4 C.4.3): the peer sends the instances back as C-STORE
sub-operations on the same association, and we store them the way serve does.

- Contexts: one Q/R GET context, and per Storage SOP class an uncompressed context and, as
  far as the 128-context budget allows, one context per compressed transfer syntax (the peer
  can only send an instance as it is in a syntax accepted for its SOP class); one SCP/SCU Role
  Selection item per SOP class proposing the SCP role for us (PS3.4 C.4.3.1, PS3.7 D.3.3.4).
- A peer that did not grant the SCP role but sends C-STOREs anyway is served, with a warning
  (DESIGN.md §3: some peers answer "default" and send regardless).
- Every received instance goes through StorageSCP: UIDs checked, paths sanitised, written
  atomically; a traversal UID gets a failure status and nothing is written.
- The DIMSE timeout applies to each message received, so a long retrieve that keeps sending
  never times out. A cancel (`cancel` event, or `max_instances` reached) sends one
  C-CANCEL-RQ, keeps answering sub-operations, and waits `cancel_grace` seconds for the final
  response before aborting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from netdicom.archive.matching import Model
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import (
    CCancelRQ,
    CGetRQ,
    CGetRSP,
    CMoveRSP,
    CommandReceived,
    CStoreRQ,
    CStoreRSP,
    DatasetFragment,
    DimseMessage,
    UnsupportedCommand,
    status,
)
from netdicom.core.errors import NetDicomError, RemoteProtocolError
from netdicom.core.records import frozen
from netdicom.services.find_scp import check_identifier, decode_identifier, encode_identifier
from netdicom.services.responses import peer_comment
from netdicom.services.retrieve_common import (
    FAILED_SOP_INSTANCE_UID_LIST,
    OnProgress,
    Progress,
    Received,
    RetrieveOutcome,
    cut_off,
    progress_of,
    sop_class_for,
)
from netdicom.services.session import CancellableReceiver, command_name, require_context
from netdicom.services.store_scp import StorageSCP
from netdicom.transport.association import Association, ReleaseRequested

log = logging.getLogger("netdicom.get")

MAX_CONTEXTS: Final = 128
_NATIVE: Final = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)
# The root of the UIDs the standard defines (PS3.5 §9.2): a private SOP class is any other.
_STANDARD: Final = "1.2.840.10008."
# The syntaxes, beyond the two native ones, we propose to receive in, each in a context of
# its own: an acceptor accepts one transfer syntax per context (PS3.8 §9.3.3.2), so one
# context offering them all let through only the one the peer picked, and an instance in any
# other could not be sent. Most common in archives first: when 128 contexts do not go round
# (PS3.8 §9.3.2.2), the rarer ones are left out. The SCP sends compressed instances as they
# are, and we store what arrives as it is (StorageSCP), so no codec is needed here.
COMPRESSED_SYNTAXES: Final = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    uids.DEFLATED_EXPLICIT_VR_LE,
)
# Asked for when the C-FIND did not say which SOP classes the instances have: image classes,
# then classes without pixel data, for which a compressed context would be wasted (only
# deflate applies to them), so the 128 go to the image classes.
_IMAGE_SOP_CLASSES: Final = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # MG for processing
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # breast tomosynthesis
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture
    "1.2.840.10008.5.1.4.1.1.7.4",  # multi-frame true colour SC
    "1.2.840.10008.5.1.4.1.1.2.1",  # enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",  # legacy converted enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # enhanced MR
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # enhanced PET
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.12.2",  # RF
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT dose
    "1.2.840.10008.5.1.4.1.1.66.4",  # segmentation
    "1.2.840.10008.5.1.4.1.1.77.1.6",  # VL whole slide microscopy
)
_WITHOUT_PIXEL_DATA: Final = (
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT structure set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT plan
    "1.2.840.10008.5.1.4.1.1.88.11",  # basic text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # key object selection
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-ray radiation dose SR
    "1.2.840.10008.5.1.4.1.1.11.1",  # grayscale softcopy presentation state
    "1.2.840.10008.5.1.4.1.1.104.1",  # encapsulated PDF
)
CURATED_SOP_CLASSES: Final = _IMAGE_SOP_CLASSES + _WITHOUT_PIXEL_DATA
# Offered every transfer syntax before the other classes get their second: proposed syntax by
# syntax only, the curated 32 classes ran out of the 128 contexts before JPEG-LS, and a
# study's JPEG-LS CT images were not sent (walkthrough 6d: `get StudyInstanceUID=...` makes
# no C-FIND, so it proposes the curated set).
_EVERY_SYNTAX_FIRST: Final = frozenset(_IMAGE_SOP_CLASSES[:6])  # CT, MR, CR, DX, MG, US


@frozen
class GetContexts:
    """What a C-GET association proposes: `contexts`, one role item per storage SOP class in
    `roles`, the SOP classes `dropped` for want of context IDs, and the (SOP class, transfer
    syntax) pairs `left_out` for want of context IDs (instances in those cannot arrive)."""

    contexts: tuple[ProposedContext, ...]
    roles: dict[str, tuple[bool, bool]]
    dropped: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]


def get_contexts(
    model: Model, sop_classes: Iterable[str], transfer_syntaxes: Sequence[str] | None = None
) -> GetContexts:
    """The Q/R GET context first; per SOP class one context with explicit and implicit VR
    little endian (the fallback every peer supports); then one context per other transfer
    syntax (`transfer_syntaxes`, default COMPRESSED_SYNTAXES) and SOP class: every syntax
    for the commonest image classes (_EVERY_SYNTAX_FIRST), then syntax by syntax in that
    order for the others, while the 128 context IDs last. Compressed and uncompressed
    syntaxes never share a context (DESIGN.md §3)."""
    # Standard SOP classes first, when not all fit: a study with 131 private classes of one
    # instance each lost its 263 CT images, whose UID sorted after theirs (walkthrough 5).
    wanted = sorted(dict.fromkeys(sop_classes), key=lambda uid: not uid.startswith(_STANDARD))
    budget = MAX_CONTEXTS - 1
    kept, dropped = wanted[:budget], wanted[budget:]
    contexts = [ProposedContext(sop_class_for("get", model), _NATIVE)]
    contexts += [ProposedContext(sop_class, _NATIVE) for sop_class in kept]
    syntaxes = [ts for ts in dict.fromkeys(transfer_syntaxes or COMPRESSED_SYNTAXES)
                if ts not in _NATIVE]  # fmt: skip
    major = [sop_class for sop_class in kept if sop_class in _EVERY_SYNTAX_FIRST]
    extra = [(sop_class, ts) for sop_class in major for ts in syntaxes]
    extra += [
        (sop_class, ts)
        for ts in syntaxes
        for sop_class in kept
        if sop_class not in _EVERY_SYNTAX_FIRST
        and (ts == uids.DEFLATED_EXPLICIT_VR_LE or sop_class not in _WITHOUT_PIXEL_DATA)
    ]
    room = budget - len(kept)
    contexts += [ProposedContext(sop_class, (ts,)) for sop_class, ts in extra[:room]]
    # We propose to be the Storage SCP only: the C-STOREs come from the peer (PS3.4 C.4.3.1).
    roles = {sop_class: (False, True) for sop_class in kept}
    return GetContexts(tuple(contexts), roles, tuple(dropped), tuple(extra[room:]))


class UnreadableList(Exception):
    """The final response's identifier cannot be read."""


def failed_list(data: bytes | None, transfer_syntax: str) -> list[str]:
    """The Failed SOP Instance UID List (0008,0058) of a final response's identifier;
    UnreadableList when the identifier cannot be read."""
    if not data:
        return []
    try:
        check_identifier(data, transfer_syntax)
        ds = decode_identifier(data, transfer_syntax)
        if FAILED_SOP_INSTANCE_UID_LIST not in ds:
            return []
        value = ds[FAILED_SOP_INSTANCE_UID_LIST].value
    except Exception as exc:
        raise UnreadableList(str(exc)) from exc
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split("\\") if v]
    return [str(v) for v in value if str(v)]


async def take_response(
    assoc: Association,
    message: DimseMessage | UnsupportedCommand,
    expected: type[CGetRSP] | type[CMoveRSP],
    message_id: int,
    transfer_syntax: str,
    outcome: RetrieveOutcome,
    on_progress: Callable[[Progress], None] | None,
    timeout: float | None,
) -> bool:
    """Check one C-GET-RSP or C-MOVE-RSP and record it in `outcome`; True when it is the
    final response (PS3.4 C.4.2.1.5, C.4.3.1.4: pending ones carry the counts only)."""
    name = "C-GET-RSP" if expected is CGetRSP else "C-MOVE-RSP"
    if not isinstance(message, expected):
        raise RemoteProtocolError(f"expected a {name}, got {command_name(message)}")
    if message.message_id_being_responded_to != message_id:
        raise RemoteProtocolError(
            f"{name} to message {message.message_id_being_responded_to}, expected {message_id}"
        )
    data = await assoc.receive_dataset(timeout) if message.has_dataset else None
    progress = progress_of(message)
    if message.status == status.PENDING:
        counts = (progress.remaining, progress.completed, progress.failed, progress.warning)
        if all(count is not None for count in counts):
            total = sum(count or 0 for count in counts)
            if outcome.announced is None:
                outcome.announced = total
            elif total > max(outcome.announced, outcome.grew_to or 0):
                outcome.grew_to = total
        if on_progress is not None:
            on_progress(progress)
        return False
    outcome.status = message.status
    outcome.final = progress
    outcome.error_comment = peer_comment(message.error_comment, message.offending_element)
    try:
        outcome.failed_uids = failed_list(data, transfer_syntax)
    except UnreadableList as exc:
        outcome.unreadable_list = str(exc)
    return True


async def get(
    assoc: Association,
    model: Model,
    identifier: Any,
    storage: StorageSCP,
    *,
    on_progress: OnProgress | None = None,
    on_received: Callable[[Received], None] | None = None,
    max_instances: int | None = None,
    cancel: asyncio.Event | None = None,
    timeout: float | None = None,
    cancel_grace: float = 5.0,
) -> RetrieveOutcome:
    """Send one C-GET-RQ and serve its sub-operations until the final C-GET-RSP."""
    sop_class = sop_class_for("get", model)
    ctx = require_context(assoc, sop_class)
    negotiated = assoc.negotiated
    assert negotiated is not None
    message_id = assoc.message_ids.next()
    await assoc.send_message(
        ctx.context_id,
        CGetRQ(message_id, sop_class),
        encode_identifier(identifier, ctx.transfer_syntax),
    )
    outcome = RetrieveOutcome(status.PENDING, Progress(None, None, None, None))
    receiver = CancellableReceiver(assoc.receive, cancel, response="C-GET-RSP", grace=cancel_grace)

    async def send_cancel() -> None:
        if outcome.cancelled:
            return
        outcome.cancelled = True
        log.info("sending C-CANCEL-RQ for C-GET %d", message_id)
        await assoc.send_message(ctx.context_id, CCancelRQ(message_id))
        receiver.cancelled()

    try:
        while True:
            event = await receiver.next(timeout)
            if event is None:
                await send_cancel()
                continue
            if isinstance(event, ReleaseRequested):
                assoc.answer_release()
                raise RemoteProtocolError("the peer released the association during its C-GET")
            if isinstance(event, DatasetFragment):
                continue  # the rest of a data set we already refused
            assert isinstance(event, CommandReceived)
            message = event.message
            if isinstance(message, CStoreRQ):
                if outcome.cancelled:
                    # Stored all the same (refusing would fail it), and counted: a peer may
                    # go on long after a C-CANCEL, far past --max.
                    outcome.after_cancel += 1
                try:
                    received = await _store(assoc, storage, event, outcome)
                except NetDicomError as exc:
                    # The association ended during its data set: listed as not stored.
                    lost = cut_off(message, exc)
                    outcome.received.append(lost)
                    if on_received is not None:
                        on_received(lost)
                    raise
                outcome.received.append(received)
                if on_received is not None:
                    on_received(received)
                if (
                    max_instances is not None
                    and sum(1 for r in outcome.received if r.ok) >= max_instances
                ):
                    await send_cancel()
                continue
            if isinstance(message, UnsupportedCommand):
                raise RemoteProtocolError(
                    f"unexpected DIMSE command 0x{message.command_field:04X} during C-GET"
                )
            final = await take_response(
                assoc,
                message,
                CGetRSP,
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


async def _store(
    assoc: Association, storage: StorageSCP, event: CommandReceived, outcome: RetrieveOutcome
) -> Received:
    message = event.message
    assert isinstance(message, CStoreRQ)
    negotiated = assoc.negotiated
    assert negotiated is not None
    context = negotiated.accepted.get(event.context_id)
    if context is None:
        raise RemoteProtocolError(f"C-STORE-RQ on unknown presentation context {event.context_id}")
    if not context.we_are_scp and context.abstract_syntax not in outcome.role_warnings:
        # PS3.4 C.4.3.1: without the SCP role the peer should not send; accepted anyway.
        outcome.role_warnings.add(context.abstract_syntax)
        # Logged for --debug only: the CLI says it once per SOP class after the transfer.
        log.info(
            "%s sends %s without having granted us the SCP role (role selection answered "
            "'default'): accepted",
            assoc.peer,
            context.abstract_syntax,
        )
    response: CStoreRSP = await storage.answer(assoc, context, message)
    return Received(
        message.affected_sop_class_uid,
        message.affected_sop_instance_uid,
        response.status,
        response.error_comment,
    )


def sop_classes_or_curated(found: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    """The SOP classes to propose: those found (plus `extra`), else the curated set."""
    chosen = [s for s in found if s]
    if not chosen:
        chosen = list(CURATED_SOP_CLASSES)
    return list(dict.fromkeys([*chosen, *extra]))


__all__ = [
    "COMPRESSED_SYNTAXES",
    "CURATED_SOP_CLASSES",
    "GetContexts",
    "Received",
    "RetrieveOutcome",
    "get",
    "get_contexts",
    "sop_classes_or_curated",
]
