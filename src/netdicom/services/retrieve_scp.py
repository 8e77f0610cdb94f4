"""Query/Retrieve C-GET and C-MOVE SCP (PS3.4 C.4.2, C.4.3) over the archive index.

- Identifier: Query/Retrieve Level and unique keys (PS3.4 C.4.2.2.1). The unique key of the
  retrieve level must hold a single UID (or ID) or a UID list; an empty or wildcard value is
  refused with A900 rather than taken as "everything". Unique keys above the level narrow the
  match when present (documented leniency: they may be missing). Other keys are ignored.
- Matching instances come from the index; each becomes one C-STORE sub-operation, sent as
  the file is (or converted between uncompressed syntaxes) on a context of its SOP class: on
  the requestor's own association for C-GET, where the requestor must have taken the SCP role
  (PS3.4 C.4.3.1); on associations we open to the Move Destination for C-MOVE, as many as the
  128-context limit needs. An instance without a usable context fails alone, never aborts.
- Every C-STORE-RQ carries our own Message ID, and for C-MOVE the Move Originator AE Title and
  Message ID (PS3.7 §9.3.1.1). After each sub-operation a Pending response carries the
  Remaining/Completed/Failed/Warning counts (capped at 65535).
- Final status (PS3.4 C.4.2.1.5, C.4.3.1.4): 0000 all succeeded, B000 some failed or warned,
  A702 all failed, FE00 after a C-CANCEL-RQ; Failed SOP Instance UID List (0008,0058) in the
  identifier when something failed, truncated (with an Error Comment) beyond one element.
  An instance the requestor accepted no context for (its SOP class, or its transfer syntax
  when we cannot convert it) is a failed sub-operation (PS3.4 C.4.3.3.1), not a lack of our
  resources: when all failed and some for that reason, the status is C003 (Failed: unable to
  process) rather than A702, and the Error Comment says what was not accepted.
- C-MOVE destinations come from a table (`remotes`): an unknown one gets A801 and no
  connection is made. A destination that rejects or aborts fails the rest of the move; a
  requestor that goes away stops the sub-operations.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Final

from netdicom.archive.index import Index, Query
from netdicom.archive.layout import inside
from netdicom.archive.matching import UNIQUE_KEYS, Key, Level, Model
from netdicom.core.acse import AcceptedContext
from netdicom.core.datasets import DicomFile, FileSource, NotSendable, encode_dataset, probe_file
from netdicom.core.dimse import (
    CCancelRQ,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CStoreRQ,
    CStoreRSP,
    DatasetFragment,
    DimseMessage,
    StatusCategory,
    category,
    status,
    status_name,
)
from netdicom.core.errors import ConnectionClosed, NetDicomError, TimeoutExpired
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.services.events import emit
from netdicom.services.find_scp import (
    IDENTIFIER_UNDECODABLE,
    QUERY_FAILED,
    check_identifier,
    decode_identifier,
    encode_identifier,
    not_yet_indexed,
)
from netdicom.services.peer import Peer
from netdicom.services.planning import batches, choose
from netdicom.services.retrieve_common import (
    FAILED_SOP_INSTANCE_UID_LIST,
    Counters,
    failed_uid_list,
    final_status,
    is_safe_unique_value,
    model_of,
    unique_tags,
)
from netdicom.services.session import ClientOptions, command_name, open_association
from netdicom.transport.association import Association, ReleaseRequested
from netdicom.transport.config import TransportConfig

log = logging.getLogger("netdicom.retrieve")

_QUERY_LEVEL: Final = 0x00080052
_SOP_INSTANCE_UID: Final = 0x00080018
_SOP_CLASS_UID: Final = 0x00080016


# Cxxx is "Failed: unable to process" for C-GET and C-MOVE alike (PS3.4 C.4.2.1.5,
# C.4.3.1.4); the low bits are ours. C001 is an undecodable identifier (find_scp).
NO_ACCEPTED_CONTEXT: Final = 0xC003


class _Refused(Exception):
    def __init__(self, code: int, comment: str) -> None:
        super().__init__(comment)
        self.code = code
        self.comment = comment[:64]  # Error Comment is an LO (PS3.7 C.4)


@frozen
class _Instance:
    sop_instance_uid: str
    sop_class_uid: str
    path: str


@dataclass(slots=True)
class _SubResult:
    status: int | None  # None: not sent (no context, unreadable, cannot convert)
    comment: str | None = None
    # Not sent because the receiver accepted no context for it: (what, UID), e.g.
    # ("transfer syntax", "1.2.840.10008.1.2.4.50"); None for every other reason.
    not_accepted: tuple[str, str] | None = None
    # Not sent for a reason of ours (cannot read or convert the file): that reason, short.
    reason: str | None = None


@dataclass(slots=True)
class _Tally(Counters):
    """The counters, and what the receiver did not accept, one entry per instance."""

    not_accepted: list[tuple[str, str]] = field(default_factory=list)
    # Why each instance we could not send at all was not sent (unreadable, cannot convert).
    unsendable: list[str] = field(default_factory=list)
    # The first thing that went wrong with the receiver itself (unreachable, it ended the
    # association, it refused an instance): the final response's Error Comment says it.
    problem: str | None = None

    def note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = _error_comment(problem)

    def cannot_send(self, sop_instance_uid: str, reason: str) -> None:
        self.fail(sop_instance_uid)
        self.unsendable.append(reason)

    def all_ours(self) -> bool:
        """Every failed sub-operation failed for a reason of ours (no context accepted for
        it, or a file we could not read or convert), none for the receiver's refusal."""
        return len(self.not_accepted) + len(self.unsendable) >= (self.failed or 0)

    def comment(self) -> str | None:
        """The final response's Error Comment: what the requestor can act on first. The
        receiver's own refusal comes first unless every failure was ours: one instance of a
        class it did not accept hid 28 it refused for a full disk (walkthrough 6b)."""
        if self.problem is not None and not self.all_ours():
            return self.problem
        if self.not_accepted:
            # Instances not sent for other reasons count too, and add to the "(+N more)".
            return _not_accepted_comment(self.not_accepted, others=self.unsendable)
        if self.problem is not None:
            return self.problem
        if self.unsendable:
            return _error_comment(f"{len(self.unsendable)} not sent: {self.unsendable[0]}")
        return None


class RetrieveSCP:
    """Answers C-GET-RQ and C-MOVE-RQ from `index`; `remotes` maps Move Destination AE titles
    to peers."""

    def __init__(
        self,
        index: Index,
        ae_title: str,
        *,
        remotes: Mapping[str, Peer] | None = None,
        transport: TransportConfig | None = None,
        transport_for: Callable[[str], TransportConfig | None] | None = None,
    ) -> None:
        self.index = index
        self._root = Path(os.path.realpath(index.directory))  # files must stay below it
        self.ae_title = ae_title
        self.remotes = {ae.strip(): peer for ae, peer in (remotes or {}).items()}
        self.transport = transport or TransportConfig()
        # Per destination AE title (e.g. TLS to some destinations); None: `transport`.
        self.transport_for = transport_for

    # --- the request --------------------------------------------------------------------

    async def handle(
        self, assoc: Association, context: AcceptedContext, message: DimseMessage
    ) -> None:
        assert isinstance(message, CGetRQ | CMoveRQ)
        timeout = assoc.config.timeouts.dimse
        data = (
            await assoc.receive_dataset(timeout, what="retrieve identifier")
            if message.has_dataset
            else None
        )
        found = model_of(context.abstract_syntax)
        kind = "get" if isinstance(message, CGetRQ) else "move"
        if (
            found is None
            or found[1] != kind
            or message.affected_sop_class_uid != (context.abstract_syntax)
        ):
            await self._final(assoc, context, message, status.SOP_CLASS_NOT_SUPPORTED, Counters(0))
            return
        model = found[0]
        try:
            # Off the event loop, as C-FIND's: pydicom decodes (element count capped).
            keys = await asyncio.to_thread(self._parse, data, context.transfer_syntax, model)
            destination: Peer | None = None
            if isinstance(message, CMoveRQ):
                destination = self.remotes.get(message.move_destination.strip())
                if destination is None:
                    raise _Refused(
                        status.MOVE_DESTINATION_UNKNOWN,
                        f"move destination {quoted(message.move_destination.strip())} unknown",
                    )
        except _Refused as refused:
            log.info(
                "C-%s from %s refused (0x%04X): %s",
                kind.upper(),
                assoc.peer,
                refused.code,
                refused.comment,
            )
            await self._final(
                assoc, context, message, refused.code, Counters(0), comment=refused.comment
            )
            return
        try:
            instances = await asyncio.to_thread(self._instances, model, keys)
        except Exception as exc:
            # The index cannot be read (removed while serving, a disk error): a failure
            # status, as C-FIND answers, not an A-ABORT a viewer reports as a network fault.
            log.error("C-%s from %s: query failed: %s", kind.upper(), assoc.peer, exc)
            await self._final(
                assoc, context, message, QUERY_FAILED, Counters(0),
                comment=f"query failed: {exc}"[:64],
            )  # fmt: skip
            return
        waiting = self.index.stranded
        if not instances and waiting:
            # As C-FIND says it: the instances asked for may be among those stored and not
            # yet indexed (a full disk); Success with nothing was taken for "none there".
            log.warning("C-%s from %s: no match, %d stored instances not yet indexed",
                        kind.upper(), assoc.peer, waiting)  # fmt: skip
            await self._final(
                assoc, context, message, QUERY_FAILED, Counters(0),
                comment=not_yet_indexed(waiting),
            )  # fmt: skip
            return
        counters = _Tally(len(instances))
        log.info(
            "C-%s from %s: %s%s",
            kind.upper(),
            assoc.peer,
            _instances_text(len(instances)),
            f" to {destination}" if destination else "",
        )
        if isinstance(message, CGetRQ):
            cancelled = await self._get(assoc, context, message, instances, counters)
        else:
            assert destination is not None
            cancelled = await self._move(assoc, context, message, destination, instances, counters)
        code = final_status(counters, cancelled=cancelled)
        if code == status.OUT_OF_RESOURCES_SUBOPERATIONS and counters.all_ours():
            # Nothing went, for reasons that are not a lack of resources: say "unable to
            # process", and the Error Comment says why (A702 sent users looking for a full disk).
            code = NO_ACCEPTED_CONTEXT
        await self._final(
            assoc,
            context,
            message,
            code,
            counters,
            cancelled=cancelled,
            comment=counters.comment(),
        )
        # Stored with a warning is sent too (it dropped out of the line, walkthrough 7c).
        sent = counters.completed + counters.warning
        warned = f" ({counters.warning} with a warning)" if counters.warning else ""
        emit(
            "retrieve",
            f"C-{kind.upper()} from {assoc.peer}: {sent} sent{warned}, "
            f"{counters.failed} failed, status 0x{code:04X}",
            peer=assoc.peer,
            operation=f"C-{kind.upper()}",
            destination=message.move_destination.strip() if isinstance(message, CMoveRQ) else None,
            instances=len(instances),
            completed=counters.completed,
            failed=counters.failed,
            warning=counters.warning,
            status=code,
        )

    def _parse(self, data: bytes | None, transfer_syntax: str, model: Model) -> list[Key]:
        if data is None:
            raise _Refused(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "no identifier")
        try:
            check_identifier(data, transfer_syntax)
            ds = decode_identifier(data, transfer_syntax)
            raw_level = ds[_QUERY_LEVEL].value if _QUERY_LEVEL in ds else None
        except Exception as exc:
            raise _Refused(IDENTIFIER_UNDECODABLE, f"cannot decode the identifier: {exc}") from exc
        text = raw_level.decode("ascii", "replace") if isinstance(raw_level, bytes) else raw_level
        level = Level.parse(str(text or ""))
        if level is None or level not in model.levels:
            raise _Refused(
                status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                f"(0008,0052) {quoted(str(text or '')[:12])} not a {model.value} root level",
            )
        keys: list[Key] = []
        for lv, tag in unique_tags(model, level):
            value = _text(ds, tag)
            if lv is level:
                if not is_safe_unique_value(value):
                    # PS3.4 C.4.2.2.1: the retrieve level's unique key names the entities;
                    # empty or wildcard would be "everything" to a lenient reading.
                    raise _Refused(
                        status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                        f"unique key ({tag >> 16:04X},{tag & 0xFFFF:04X}) empty or wildcard",
                    )
            elif not value:
                continue  # leniency: a missing key above the level does not narrow
            elif not is_safe_unique_value(value):
                raise _Refused(
                    status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                    f"unique key ({tag >> 16:04X},{tag & 0xFFFF:04X}) is a wildcard",
                )
            vr = "LO" if tag == UNIQUE_KEYS[Level.PATIENT] else "UI"
            keys.append(Key(tag, vr, value))
        return keys

    def _instances(self, model: Model, keys: Sequence[Key]) -> list[_Instance]:
        query = Query(model, Level.IMAGE, tuple(keys))
        found: list[_Instance] = []
        for match in chain.from_iterable(self.index.find(query, None, batch=1024)):
            uid = match.record.get(_SOP_INSTANCE_UID, ())
            sop_class = match.record.get(_SOP_CLASS_UID, ())
            if isinstance(uid, tuple) and uid and match.path:
                cls = sop_class[0] if isinstance(sop_class, tuple) and sop_class else ""
                found.append(_Instance(uid[0], cls, match.path))
        return found

    def _probe(self, instance: _Instance) -> DicomFile | str:
        """The file of an indexed instance, checked to still be that instance: one replaced by
        hand (a wrong restore, a script) went out as the instance asked for, another patient's
        image under this one's request, with success all round (walkthrough 5). A symbolic
        link put in its place that leads outside the archive is not followed either."""
        path = self._root / instance.path
        # The reason first: the Error Comment a peer sees holds 64 characters.
        if not inside(self._root, path):
            return f"its file leads outside the archive (a symbolic link?): {instance.path}"
        try:
            info = probe_file(path)
        except NotSendable as exc:
            return str(exc)
        except OSError as exc:
            return f"cannot read {instance.path}: {exc.strerror or exc}"
        if info.sop_instance_uid != instance.sop_instance_uid:
            return (
                f"its file changed since it was indexed, it holds another instance "
                f"({info.sop_instance_uid[:64]}): {instance.path}"
            )
        return info

    # --- C-GET ----------------------------------------------------------------------------

    async def _get(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CGetRQ,
        instances: Sequence[_Instance],
        counters: _Tally,
    ) -> bool:
        """The sub-operations on the requestor's association; True when cancelled."""
        timeout = assoc.config.timeouts.dimse
        cancel = _CancelWatch(message.message_id, release_cancels=True)
        for instance in instances:
            if cancel.requested or await cancel.poll(assoc):
                return True
            info = await asyncio.to_thread(self._probe, instance)
            if isinstance(info, str):
                log.warning("C-GET: %s not sent: %s", instance.sop_instance_uid, info)
                counters.cannot_send(instance.sop_instance_uid, info)
            else:
                result = await send_sub_operation(assoc, info, timeout, cancel=cancel)
                _count(counters, instance, result, "C-GET", assoc.peer)
            await self._pending(assoc, context, message, counters)
        return cancel.requested

    # --- C-MOVE ---------------------------------------------------------------------------

    async def _move(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CMoveRQ,
        destination: Peer,
        instances: Sequence[_Instance],
        counters: _Tally,
    ) -> bool:
        """The sub-operations over associations to `destination`; True when cancelled."""
        cancel = _CancelWatch(message.message_id, release_cancels=False)
        files: list[DicomFile] = []
        by_uid: dict[str, _Instance] = {}
        for instance in instances:
            info = await asyncio.to_thread(self._probe, instance)
            if isinstance(info, str):
                log.warning("C-MOVE: %s not sent: %s", instance.sop_instance_uid, info)
                counters.cannot_send(instance.sop_instance_uid, info)
                continue
            files.append(info)
            by_uid[info.sop_instance_uid] = instance
        negotiated = assoc.negotiated
        assert negotiated is not None
        originator = (negotiated.calling_ae, message.message_id)
        transport = None
        if self.transport_for is not None:
            transport = self.transport_for(message.move_destination.strip())
        transport = transport or self.transport
        options = ClientOptions(
            calling_ae=self.ae_title,
            called_ae=destination.ae_title or message.move_destination,
            transport=transport,
        )
        timeout = transport.timeouts.dimse
        plan = batches(files)
        for number, batch in enumerate(plan):
            if await cancel.poll(assoc):
                return True
            try:
                sub = await open_association(destination, options, batch.contexts)
            except NetDicomError as exc:
                log.warning("C-MOVE: cannot open an association to %s: %s", destination, exc)
                counters.note(f"cannot reach {message.move_destination.strip()}: {exc}")
                _fail_rest(counters, plan[number:], by_uid)
                return False
            try:
                for index, info in enumerate(batch.files):
                    if await cancel.poll(assoc):
                        await _release(sub)
                        return True
                    try:
                        result = await send_sub_operation(sub, info, timeout, originator=originator)
                    except NetDicomError as exc:
                        log.warning("C-MOVE: %s ended the sub-association: %s", destination, exc)
                        counters.note(f"{message.move_destination.strip()} stopped: {exc}")
                        sub.abort()
                        counters.fail(info.sop_instance_uid)
                        for rest in batch.files[index + 1 :]:
                            counters.fail(rest.sop_instance_uid)
                        _fail_rest(counters, plan[number + 1 :], by_uid)
                        await self._pending(assoc, context, message, counters)
                        return False
                    _count(counters, by_uid[info.sop_instance_uid], result, "C-MOVE", destination)
                    await self._pending(assoc, context, message, counters)
            except BaseException:
                # The requestor went away (or we are being stopped): stop the sub-operations.
                sub.abort()
                raise
            await _release(sub)
        return False

    # --- responses ------------------------------------------------------------------------

    async def _pending(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CGetRQ | CMoveRQ,
        counters: Counters,
    ) -> None:
        remaining, completed, failed, warning = counters.capped()
        if not remaining:
            return  # the final response follows at once
        rsp_type = CGetRSP if isinstance(message, CGetRQ) else CMoveRSP
        await assoc.send_message(
            context.context_id,
            rsp_type(
                message.message_id,
                status.PENDING,
                message.affected_sop_class_uid,
                number_of_remaining_suboperations=remaining,
                number_of_completed_suboperations=completed,
                number_of_failed_suboperations=failed,
                number_of_warning_suboperations=warning,
            ),
        )

    async def _final(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CGetRQ | CMoveRQ,
        code: int,
        counters: Counters,
        *,
        cancelled: bool = False,
        comment: str | None = None,
    ) -> None:
        remaining, completed, failed, warning = counters.capped()
        refused = category(code) is StatusCategory.FAILURE and not counters.total
        dataset: bytes | None = None
        if counters.failed_uids and code != status.SUCCESS:
            from pydicom.dataset import Dataset

            listed, truncated = failed_uid_list(counters.failed_uids)
            ds = Dataset()
            ds.add_new(FAILED_SOP_INSTANCE_UID_LIST, "UI", listed)
            dataset = encode_identifier(ds, context.transfer_syntax)
            comment = comment or truncated
        rsp_type = CGetRSP if isinstance(message, CGetRQ) else CMoveRSP
        response = rsp_type(
            message.message_id,
            code,
            message.affected_sop_class_uid,
            # Remaining only in Pending and (optionally) Cancel responses (PS3.4 C.4.2.1.4).
            number_of_remaining_suboperations=remaining if cancelled else None,
            number_of_completed_suboperations=None if refused else completed,
            number_of_failed_suboperations=None if refused else failed,
            number_of_warning_suboperations=None if refused else warning,
            error_comment=comment,
            has_dataset=dataset is not None,
        )
        await assoc.send_message(context.context_id, response, dataset)


def _text(ds: Any, tag: int) -> str:
    if tag not in ds:
        return ""
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \x00")
    if isinstance(value, str):
        return value.strip(" \x00")
    return "\\".join(str(v).strip(" \x00") for v in value)


def _count(
    counters: _Tally, instance: _Instance, result: _SubResult, service: str, receiver: object
) -> None:
    if result.status is None:
        log.warning(
            "%s: %s not sent to %s: %s",
            service,
            instance.sop_instance_uid,
            receiver,
            result.comment,
        )
        if result.not_accepted is not None:
            counters.fail(instance.sop_instance_uid)
            counters.not_accepted.append(result.not_accepted)
        else:
            counters.cannot_send(instance.sop_instance_uid, result.reason or "cannot send")
        return
    kind = category(result.status)
    if kind is StatusCategory.SUCCESS:
        counters.completed += 1
    elif kind is StatusCategory.WARNING:
        counters.warning += 1
    else:
        name = f"{status_name(result.status, 'store')} (0x{result.status:04X})"
        log.warning(
            "%s: %s refused by %s: %s%s",
            service,
            instance.sop_instance_uid,
            receiver,
            name,
            f": {result.comment}" if result.comment else "",
        )
        counters.fail(instance.sop_instance_uid)
        counters.note(f"refused by the receiver: {name}")


def _error_comment(text: str) -> str:
    """`text` as an Error Comment: an LO of the command set (PS3.7 C.4), so at most 64
    characters of the default repertoire and no backslash (a value separator)."""
    clean = text.encode("ascii", "replace").decode().replace("\\", "/")
    clean = "".join(char if char.isprintable() else "?" for char in clean)
    return clean if len(clean) <= 64 else clean[:61] + "..."


def _instances_text(number: int) -> str:
    return f"{number} instance" if number == 1 else f"{number} instances"


def _not_accepted_comment(
    not_accepted: Sequence[tuple[str, str]], others: Sequence[str] = ()
) -> str | None:
    """The Error Comment of the final response when instances were not sent for want of an
    accepted context: how many, and the first thing not accepted. An Error Comment is an LO
    (PS3.7 C.4: 64 characters): the longest wording that fits, never a UID cut short."""
    if not not_accepted:
        return None
    kinds = list(dict.fromkeys(not_accepted))
    what, uid = kinds[0]
    head = f"{len(not_accepted) + len(others)} not sent"
    candidates = [f"{head}: {what} {uid} not accepted", f"{head}: {what} not accepted"]
    more = len(kinds) - 1 + len(set(others))
    if more:
        # Never a comment that puts every instance on the first kind (walk-through 4).
        # "(+3 more)" read as three more instances (walkthrough 7c): reasons, said so.
        reasons = "reason" if more == 1 else "reasons"
        candidates = [f"{text} (+{more} more {reasons})" for text in candidates]
    return next((text for text in candidates if len(text) <= 64), _error_comment(candidates[-1]))


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def _unsendable(
    accepted: Mapping[int, AcceptedContext], info: DicomFile, reason: str
) -> _SubResult:
    """Why `info` could not be sent, with what the receiver accepted for its SOP class: the
    log is where serve's user finds out (walk-through finding 4)."""
    of_class = [c for c in accepted.values() if c.abstract_syntax == info.sop_class_uid]
    mine = [c for c in of_class if c.we_are_scu]
    missing: tuple[str, str] | None = None
    if not of_class:
        missing = ("SOP class", info.sop_class_uid)
    elif not mine:
        # C-GET: the requestor did not take the Storage SCP role (PS3.4 C.4.3.1).
        missing = ("SCP role for SOP class", info.sop_class_uid)
    elif info.transfer_syntax not in {c.transfer_syntax for c in mine}:
        missing = ("transfer syntax", info.transfer_syntax)
    # Else accepted, but the file cannot go as it is (e.g. an odd length): the file's fault.
    took = ", ".join(sorted({_uid_name(c.transfer_syntax) for c in mine})) or "nothing"
    detail = (
        f"{reason} [instance of {_uid_name(info.sop_class_uid)} in "
        f"{_uid_name(info.transfer_syntax)}; accepted for that SOP class: {took}]"
    )
    return _SubResult(None, detail, missing, reason=reason)


def _fail_rest(counters: Counters, plan: Sequence[Any], by_uid: Mapping[str, _Instance]) -> None:
    for batch in plan:
        for info in batch.files:
            counters.fail(info.sop_instance_uid)


async def _release(assoc: Association) -> None:
    try:
        await assoc.release()
    except NetDicomError as exc:
        log.info("release of the sub-association failed: %s", exc)


class _CancelWatch:
    """Looks for the C-CANCEL-RQ of one request (PS3.7 §9.3.3.3, §9.3.4.3)."""

    def __init__(self, message_id: int, *, release_cancels: bool) -> None:
        self.message_id = message_id
        self.requested = False
        # A requestor that asked for the release can answer no more C-STORE sub-operations
        # (it sends no P-DATA in Sta7, PS3.8 Table 9-10): for a C-GET the release is a cancel.
        # A C-MOVE's sub-operations go elsewhere and are finished first.
        self.release_cancels = release_cancels

    def offer(self, message: object) -> bool:
        """True when `message` is a C-CANCEL-RQ (ours: remembered; another's: dropped)."""
        if not isinstance(message, CCancelRQ):
            return False
        if message.message_id_being_responded_to == self.message_id:
            self.requested = True
        return True

    def released(self, assoc: Association, event: ReleaseRequested) -> None:
        log.info(
            "%s asked for the release during its retrieve: answered after the final response%s",
            assoc.peer,
            " (the remaining sub-operations are cancelled)" if self.release_cancels else "",
        )
        assoc.keep_release(event)
        self.requested = self.requested or self.release_cancels

    async def poll(self, assoc: Association) -> bool:
        """Take what the requestor sent meanwhile without waiting; True once cancelled.
        A release request is kept for the service loop, which answers it after the final
        response (it was answered at once, and the retrieve's answers were lost). Raises when
        the requestor aborted."""
        while not self.requested:
            if assoc.release_queued:
                return self.requested
            try:
                event = await assoc.receive(0)
            except TimeoutExpired:
                return False
            if isinstance(event, ReleaseRequested):
                self.released(assoc, event)
                continue
            if isinstance(event, DatasetFragment):
                continue
            if not self.offer(event.message):
                log.warning(
                    "%s sent %s during its retrieve: ignored",
                    assoc.peer,
                    command_name(event.message),
                )
        return True


async def send_sub_operation(
    assoc: Association,
    info: DicomFile,
    timeout: float | None,
    *,
    originator: tuple[str, int] | None = None,
    cancel: _CancelWatch | None = None,
) -> _SubResult:
    """One C-STORE sub-operation: the file as it is on a context of its transfer syntax, or
    converted between uncompressed syntaxes; the receiver's status, or why it was not sent.
    A C-CANCEL-RQ that arrives meanwhile (C-GET: same association) is given to `cancel`."""
    negotiated = assoc.negotiated
    assert negotiated is not None
    try:
        choice = choose(negotiated.accepted, info)
    except NotSendable as exc:
        return _unsendable(negotiated.accepted, info, str(exc))
    data: bytes | None = None
    if choice.convert:
        try:
            data = await asyncio.to_thread(encode_dataset, info, choice.transfer_syntax)
        except NotSendable as exc:
            return _SubResult(None, str(exc), reason=str(exc))
    message_id = assoc.message_ids.next()
    request = CStoreRQ(
        message_id,
        info.sop_class_uid,
        info.sop_instance_uid,
        move_originator_ae_title=None if originator is None else originator[0],
        move_originator_message_id=None if originator is None else originator[1],
    )
    try:
        if data is not None:
            await assoc.send_message(choice.context.context_id, request, data)
        else:
            try:
                source = FileSource(info)
            except OSError as exc:
                why = f"cannot read: {exc.strerror or exc}"
                return _SubResult(None, why, reason=why)
            try:
                await assoc.send_message(choice.context.context_id, request, source)
            finally:
                source.close()
        while True:
            event = await assoc.receive(timeout)
            if isinstance(event, ReleaseRequested):
                if cancel is None:  # a C-MOVE's destination ended its association
                    assoc.answer_release()
                    raise ConnectionClosed(f"{assoc.peer} released the association mid C-STORE")
                # A C-GET's requestor released instead of answering: it never will (Sta7).
                cancel.released(assoc, event)
                why = "the requestor asked for the release instead of answering"
                return _SubResult(None, why, reason=why)
            if isinstance(event, DatasetFragment):
                continue
            response = event.message
            if cancel is not None and cancel.offer(response):
                continue
            if (
                isinstance(response, CStoreRSP)
                and response.message_id_being_responded_to == message_id
            ):
                return _SubResult(response.status, response.error_comment)
            from netdicom.core.errors import RemoteProtocolError

            raise RemoteProtocolError(
                f"expected the C-STORE-RSP to message {message_id}, got {command_name(response)}"
            )
    finally:
        assoc.message_ids.release(message_id)


__all__ = ["RetrieveSCP", "send_sub_operation"]
