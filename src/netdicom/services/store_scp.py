"""The Storage SCP (PS3.4 Annex B): receive C-STORE data sets straight into the archive.

Each data set is checked as its fragments arrive by an incremental scanner and goes to a
temporary file, made durable, and put in place before success is answered. Durably, one of up
to 256 KiB is held in memory, one larger is streamed to its file by the spool's threads as it
arrives (archive.spool; never held whole); either way it is then synced and named by the group
commit with the other instances received meanwhile (archive.group_commit).

Statuses (PS3.4 B.2.3; the low byte of A7xx and Cxxx is ours to choose):

- 0x0000 stored (also for a duplicate kept or renamed under `--on-duplicate`);
- 0xA700 out of resources: the write, fsync or rename failed (disk full, I/O error);
- 0xA900 the data set's SOP Class UID is not the command's, or an instance of a patient IOD
  has no Study or Series Instance UID (it could be stored, never found or retrieved);
- 0xC000 the data set cannot be parsed (or the command announced none);
- 0xC001 the data set's SOP Instance UID is missing or is not the command's;
- 0xC002 a UID the path is built from is not a valid UID (e.g. `../x`): nothing is written;
- 0xC003 a cap was exceeded: sequence nesting depth or inflated size of deflated data;
- 0x0110 processing failure: an `on_stored` hook failed (the file is kept).
The association stays usable after every one of them.
"""

from __future__ import annotations

import inspect
import logging
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import Any, Final

from netdicom.archive.group_commit import GroupCommit
from netdicom.archive.layout import (
    DEFAULT_LAYOUT,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    Layout,
    UnsafePath,
    is_valid_uid,
)
from netdicom.archive.meta import encode_file_meta
from netdicom.archive.rebuild import CAPTURE_TAGS
from netdicom.archive.scan import DatasetError, DatasetScanner, LimitExceeded
from netdicom.archive.spool import Spool, SpooledFile
from netdicom.archive.writer import (
    Archive,
    DeferredFile,
    DuplicatePolicy,
    Outcome,
    PendingFile,
    Placed,
)
from netdicom.core import uids
from netdicom.core.acse import AcceptedContext
from netdicom.core.datasets import file_damage
from netdicom.core.dimse import CStoreRQ, CStoreRSP, DatasetFragment, DimseMessage, status
from netdicom.core.errors import RemoteProtocolError, TimeoutExpired
from netdicom.core.pdu.types import ContextResult
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.core.sop_classes import is_compressed, is_patient_storage
from netdicom.services.dispatcher import Completion
from netdicom.transport.association import Association, ReleaseRequested

log = logging.getLogger("netdicom.store")

SOP_INSTANCE_MISMATCH = 0xC001
UNSAFE_UID = 0xC002
LIMIT_EXCEEDED = 0xC003

# Data sets encoded with deflate (PS3.5 §A.5; the JPIP referenced deflate syntaxes, A.7, too).
DEFLATED_SYNTAXES = frozenset(
    {uids.DEFLATED_EXPLICIT_VR_LE, "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"}
)
_INFLATE_STEP = 1 << 20
# Durable data sets up to this size (file meta included) are held in memory and written by the
# group commit's thread; larger ones are written by the spool's threads as they arrive (memory
# held per instance stays below this). With this limit at 1 MiB, 500 CT images of 0.5 MB took
# 1.77 s against 1.53 s with the spool writing them (median of 4, alternating).
SPOOL_ABOVE = 256 << 10
# Complete data sets held in memory while they wait for the group commit, over all
# associations (Archive.held): past this, new ones are written through the spool as they
# arrive, so memory stays bounded whatever window and how many associations peers ask for.
HELD_LIMIT = 16 << 20


@frozen
class StoreLimits:
    """Caps on what a peer may make us parse.

    - `max_depth`: sequences nested deeper than this fail with 0xC003. Real instances stay
      below 10; 32 keeps any later recursive parse (pydicom, the index) far from Python's
      recursion limit.
    - `max_inflated`: a deflated data set that inflates beyond this many bytes fails with
      0xC003 (4 GiB: the largest value a 32-bit element length can describe).
    """

    max_depth: int = 32
    max_inflated: int = 4 << 30


@frozen
class StoredInstance:
    """An instance that is durable on disk (given to `on_stored` hooks)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    calling_ae: str
    size: int  # bytes of the data set as received (without the file meta)
    outcome: Outcome
    # Raw top-level values the scanner captured while receiving (the layout's tags and
    # archive.rebuild.CAPTURE_TAGS): the index is fed from these, without reading the file.
    values: Mapping[int, bytes] = field(default_factory=dict, compare=False, repr=False)
    # The sender's address (host:port), for the log: not part of what was stored.
    peer: str = field(default="", compare=False)


OnStored = Callable[[StoredInstance], "Awaitable[None] | None"]
OnPlaced = Callable[[StoredInstance], None]


class _Failed(Exception):
    """A failure status: `comment` for the Error Comment (an LO, 64 characters), `detail`
    for our log, which has no such limit."""

    def __init__(self, code: int, comment: str, detail: str | None = None) -> None:
        super().__init__(comment)
        self.code = code
        self.comment = comment
        self.detail = detail or comment


@cache
def _dictionary_vr(tag: int) -> str | None:
    from pydicom._dicom_dict import DicomDictionary

    entry = DicomDictionary.get(tag)
    return None if entry is None else str(entry[0])


@cache
def _encoding(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a transfer syntax we accepted."""
    if transfer_syntax == uids.IMPLICIT_VR_LE:
        return True, True
    if transfer_syntax == uids.EXPLICIT_VR_BE:
        return False, False
    # Every other public transfer syntax encodes the data set in explicit VR little endian.
    return False, True


class _Inflater:
    """Feeds the inflated bytes of a deflated data set to the scanner, up to a cap."""

    __slots__ = ("_cap", "_scanner", "_total", "_zlib")

    def __init__(self, scanner: DatasetScanner, cap: int) -> None:
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, PS3.5 A.5
        self._scanner = scanner
        self._cap = cap
        self._total = 0

    def feed(self, data: bytes | memoryview) -> None:
        engine = self._zlib
        if engine.eof:
            return  # trailing padding after the end of the stream
        try:
            chunk = engine.decompress(data, _INFLATE_STEP)
            while True:
                self._take(chunk)
                if not engine.unconsumed_tail or engine.eof:
                    break
                chunk = engine.decompress(engine.unconsumed_tail, _INFLATE_STEP)
        except zlib.error as exc:
            raise DatasetError(f"deflated data set is corrupt: {exc}") from None

    def finish(self) -> None:
        try:
            self._take(self._zlib.flush())
        except zlib.error as exc:
            raise DatasetError(f"deflated data set is corrupt: {exc}") from None
        if not self._zlib.eof:
            raise DatasetError("deflated data set is truncated")

    def _take(self, chunk: bytes) -> None:
        self._total += len(chunk)
        if self._total > self._cap:
            raise LimitExceeded(f"deflated data set inflates beyond {self._cap} bytes")
        self._scanner.feed(chunk)


_STUDY_INSTANCE_UID: Final = 0x0020000D
_SERIES_INSTANCE_UID: Final = 0x0020000E


def _check_filing(scanner: DatasetScanner) -> None:
    """An instance of a patient IOD must name its study and series (Type 1, PS3.3 C.7.2.1 and
    C.7.3.1): stored without them, it was answered Success and then could not be found by
    C-FIND nor retrieved by C-GET or C-MOVE (walkthrough 6b). Refused as Orthanc does."""
    for tag, name in ((_STUDY_INSTANCE_UID, "Study"), (_SERIES_INSTANCE_UID, "Series")):
        if not _text(scanner.values.get(tag)):
            raise _Failed(
                status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                f"data set has no {name} Instance UID (Type 1)",
            )


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("latin-1").strip(" \x00")


class _Received:
    """A data set received whole into a temporary file, checked, not yet in place."""

    __slots__ = (
        "calling_ae",
        "header_length",
        "peer",
        "pending",
        "rq",
        "spooled",
        "transfer_syntax",
        "values",
    )

    def __init__(
        self,
        rq: CStoreRQ,
        transfer_syntax: str,
        calling_ae: str,
        values: Mapping[int, bytes],
        header_length: int,
        peer: str = "",
    ) -> None:
        self.rq = rq
        self.transfer_syntax = transfer_syntax
        self.calling_ae = calling_ae
        self.peer = peer
        self.values = values
        self.header_length = header_length
        self.pending: PendingFile | DeferredFile | None = None
        self.spooled: SpooledFile | None = None


class StorageSCP:
    """Answers C-STORE-RQ by writing the instance into `archive` under `layout`.

    `on_placed`: blocking hooks called with each StoredInstance as soon as it is in place, on
    the thread that placed it (a worker thread when fsync is on, so they must be thread-safe):
    work that would otherwise hold up the event loop, e.g. the query index.
    `on_stored`: hooks called on the event loop after that and before success is answered.
    A hook may be a coroutine function. A failing hook of either kind answers 0x0110.
    `stored_at`: where an SOP instance is already stored (relative to the archive), None when
    it is not: the archive's duplicate policy then applies by SOP Instance UID, not only when
    two versions map to the same path (serve sets it from its index).
    `require_filing`: refuse (A900) an instance of a patient IOD without Study or Series
    Instance UID: an archive others query must be able to find what it stored (serve). A
    folder get and move --listen write for us takes what the peer sends.
    """

    def __init__(
        self,
        archive: Archive,
        layout: Layout | None = None,
        *,
        limits: StoreLimits | None = None,
        require_filing: bool = False,
    ) -> None:
        self.archive = archive
        self.require_filing = require_filing
        self.layout = layout or Layout.parse(DEFAULT_LAYOUT)
        self.limits = limits or StoreLimits()
        self.on_stored: list[OnStored] = []
        self.on_placed: list[OnPlaced] = []
        self.stored_at: Callable[[str], str | None] | None = None
        # Why stores are refused now (A700), or None: serve's index cannot be written.
        self.refusal: Callable[[], str | None] | None = None
        self._capture = self.layout.tags | {SOP_CLASS_UID, SOP_INSTANCE_UID} | CAPTURE_TAGS
        # Large data sets are written by worker threads as they arrive (archive.spool): the
        # copying overlaps with receiving.
        self._spool = Spool()
        # Durable instances are synced and named in groups (small ones written there too).
        self._group_commit = GroupCommit(archive)

    async def handle(
        self, assoc: Association, context: AcceptedContext, message: DimseMessage
    ) -> Completion:
        """The dispatcher's handler: receive the data set now (the association's bytes come
        in order), and return the rest (make it durable, index it, answer) for the dispatcher
        to run, in the background when an asynchronous operations window lets the peer send
        its next instance meanwhile (PS3.7 D.3.3.3)."""
        assert isinstance(message, CStoreRQ)
        finish = await self.receive(assoc, context, message)
        return finish()

    async def answer(
        self, assoc: Association, context: AcceptedContext, message: CStoreRQ
    ) -> CStoreRSP:
        """Receive the data set of `message`, store it and send the C-STORE-RSP, which is
        returned (C-GET and C-MOVE receivers count the outcomes)."""
        finish = await self.receive(assoc, context, message)
        return await finish()

    async def receive(
        self, assoc: Association, context: AcceptedContext, message: CStoreRQ
    ) -> Callable[[], Coroutine[Any, Any, CStoreRSP]]:
        """Take the data set of `message` off the association into a temporary file; return
        what puts it in place and sends the C-STORE-RSP (run it exactly once)."""
        negotiated = assoc.negotiated
        assert negotiated is not None
        received: _Received | None = None
        failure: _Failed | None = None
        try:
            if not message.has_dataset:
                raise _Failed(status.CANNOT_UNDERSTAND, "C-STORE-RQ without a data set")
            received = await self._receive(assoc, context, message, _sender(assoc))
        except _Failed as failed:
            failure = failed

        async def finish() -> CStoreRSP:
            code = status.SUCCESS
            comment: str | None = None
            try:
                if failure is not None:
                    raise failure
                assert received is not None
                stored = await self._place(received)
                await self._notify(stored)
            except _Failed as failed:
                code, comment = failed.code, failed.comment
                log.warning(
                    "C-STORE %s from %s failed (0x%04X): %s",
                    message.affected_sop_instance_uid,
                    _sender(assoc),
                    code,
                    failed.detail,
                )
            response = CStoreRSP(
                message.message_id,
                code,
                message.affected_sop_class_uid,
                message.affected_sop_instance_uid,
                error_comment=None if comment is None else comment[:64],  # LO, PS3.7 C.4
            )
            await assoc.send_message(context.context_id, response)
            return response

        return finish

    async def _receive(
        self, assoc: Association, context: AcceptedContext, rq: CStoreRQ, calling_ae: str
    ) -> _Received:
        timeout = assoc.config.timeouts.dimse
        failure: _Failed | None = None
        pending: PendingFile | DeferredFile | None = None
        instance_uid = rq.affected_sop_instance_uid
        if not is_valid_uid(instance_uid):
            failure = _Failed(UNSAFE_UID, f"invalid SOP Instance UID {quoted(instance_uid[:40])}")
        elif not is_valid_uid(rq.affected_sop_class_uid):
            failure = _Failed(UNSAFE_UID, "invalid SOP Class UID")
        elif rq.affected_sop_class_uid != context.abstract_syntax:
            # PS3.7 §9.3.1.1: the SOP class is the context's abstract syntax.
            failure = _Failed(
                status.SOP_CLASS_NOT_SUPPORTED, "SOP Class UID is not the context's abstract syntax"
            )
        elif self.refusal is not None and (why := self.refusal()) is not None:
            failure = _Failed(status.OUT_OF_RESOURCES, why)
        ts = context.transfer_syntax
        implicit, little = _encoding(ts)
        scanner = DatasetScanner(
            implicit_vr=implicit,
            little_endian=little,
            capture=self._capture,
            max_depth=self.limits.max_depth,
            vr_lookup=_dictionary_vr,
            encapsulated=is_compressed(ts),
        )
        inflater = _Inflater(scanner, self.limits.max_inflated) if ts in DEFLATED_SYNTAXES else None
        spooled: SpooledFile | None = None
        header = encode_file_meta(
            sop_class_uid=rq.affected_sop_class_uid,
            sop_instance_uid=instance_uid,
            transfer_syntax=ts,
            source_ae_title=calling_ae,
        )
        started = False
        checked = False
        # Study and Series Instance UIDs are checked once the scanner is past them (or at the
        # end); a class that files none has nothing to check.
        filed = not (self.require_filing and is_patient_storage(rq.affected_sop_class_uid))
        try:
            while True:
                try:
                    event = await assoc.receive(timeout)
                except TimeoutExpired:
                    assoc.abort(source=2)
                    raise
                if isinstance(event, ReleaseRequested):
                    # A release in the middle of a data set: the C-STORE is lost, and the
                    # peer must hear it. Answered as an orderly release, it was taken for
                    # one with nothing lost in transit (walkthrough 6c): A-ABORT.
                    raise RemoteProtocolError(
                        "A-RELEASE-RQ in the middle of a data set: the C-STORE is lost"
                    )
                if not isinstance(event, DatasetFragment):
                    raise _Failed(status.CANNOT_UNDERSTAND, "data set incomplete")
                if failure is None and not started:
                    # Durably, a data set is held in memory (DeferredFile) up to SPOOL_ABOVE
                    # bytes and then written, synced and placed by the group commit (one
                    # sync for all the small instances that arrive meanwhile); a larger one,
                    # or any while HELD_LIMIT is reached, goes through the spool as it
                    # arrives: worker threads write it (O_DIRECT, archive.direct_io) while
                    # the event loop receives, and the group commit syncs it. Creating a file
                    # is never done on the event loop (it waits for the journal while other
                    # instances are synced, stalling every association). Without fsync a
                    # data set in several fragments goes through the spool too (written
                    # here, a 64 MB instance went at 230-310 MB/s against 670-700 on the
                    # workers); one in a single fragment is written here, cheaper than a
                    # hand-over for a few KB.
                    started = True
                    if self.archive.fsync:
                        pending = DeferredFile(self.archive, header)
                    elif not event.is_last:
                        spooled = SpooledFile(self._spool, self.archive, header)
                    else:
                        try:
                            pending = self.archive.begin(header)
                        except OSError as exc:
                            failure = _Failed(
                                status.OUT_OF_RESOURCES, f"cannot write: {exc.strerror}"
                            )
                if failure is None:
                    data = event.data
                    try:
                        if inflater is None:
                            scanner.feed(data)
                        else:
                            inflater.feed(data)
                        if spooled is not None:
                            if spooled.error is not None:
                                raise spooled.error
                            await spooled.write(data)
                        else:
                            assert pending is not None
                            pending.write(data)
                            if isinstance(pending, DeferredFile) and (
                                pending.size > SPOOL_ABOVE or self.archive.held > HELD_LIMIT
                            ):
                                spooled = SpooledFile(self._spool, self.archive, header)
                                for piece in pending.take():
                                    await spooled.write(piece)
                                pending = None
                        # Checked as soon as the element after (0008,0018) begins.
                        if not checked and scanner.passed(SOP_INSTANCE_UID + 1):
                            self._check(scanner, rq)
                            checked = True
                        if not filed and scanner.passed(_SERIES_INSTANCE_UID + 1):
                            _check_filing(scanner)
                            filed = True
                    except _Failed as exc:
                        failure = exc
                    except LimitExceeded as exc:
                        failure = _Failed(LIMIT_EXCEEDED, str(exc))
                    except DatasetError as exc:
                        failure = _Failed(status.CANNOT_UNDERSTAND, str(exc))
                    except OSError as exc:
                        failure = _Failed(
                            status.OUT_OF_RESOURCES, f"write failed: {exc.strerror or exc}"
                        )
                    if failure is not None:
                        if pending is not None:
                            pending.discard()
                        if spooled is not None:
                            await spooled.discard()
                if event.is_last:
                    break
            if failure is not None:
                raise failure
            try:
                if inflater is not None:
                    inflater.finish()
                scanner.finish()
            except LimitExceeded as exc:
                raise _Failed(LIMIT_EXCEEDED, str(exc)) from None
            except DatasetError as exc:
                raise _Failed(status.CANNOT_UNDERSTAND, str(exc)) from None
            if not checked:
                self._check(scanner, rq)
            if not filed:
                _check_filing(scanner)
            if isinstance(pending, DeferredFile):
                pending.seal()
            received = _Received(rq, ts, calling_ae, scanner.values, len(header), assoc.peer)
            received.pending, received.spooled = pending, spooled
            pending = spooled = None  # handed over: _place commits or discards them
            return received
        finally:
            if pending is not None:
                pending.discard()
            if spooled is not None:
                spooled.discard_now()

    async def _place(self, received: _Received) -> StoredInstance:
        """Put a received data set in place under the layout, durably (see module doc)."""
        rq = received.rq
        instance_uid = rq.affected_sop_instance_uid
        pending, spooled = received.pending, received.spooled
        received.pending = received.spooled = None
        try:
            values: dict[int, bytes | str] = dict(received.values)
            values[SOP_INSTANCE_UID] = instance_uid
            values[SOP_CLASS_UID] = rq.affected_sop_class_uid
            try:
                relative = self.layout.render(values)
            except UnsafePath as exc:
                raise _Failed(UNSAFE_UID, str(exc)) from None
            size = spooled.size if spooled is not None else pending.size if pending else 0

            def placed_hooks(placed: Placed) -> StoredInstance:
                # Where the file was placed: a worker thread when fsync is on.
                placed = self._one_per_instance(placed, instance_uid)
                stored = StoredInstance(
                    path=placed.path,
                    sop_class_uid=rq.affected_sop_class_uid,
                    sop_instance_uid=instance_uid,
                    transfer_syntax=received.transfer_syntax,
                    calling_ae=received.calling_ae,
                    size=size - received.header_length,
                    outcome=placed.outcome,
                    values=received.values,
                    peer=received.peer,
                )
                self._run_placed_hooks(stored)
                return stored

            try:
                if spooled is not None:
                    if not self.archive.fsync:
                        return await spooled.commit(relative, placed_hooks)
                    # Written by the spool's threads, synced and named with a group.
                    written = await spooled.finish()
                    return await self._group_commit.commit(written, relative, placed_hooks)
                assert pending is not None
                if isinstance(pending, DeferredFile):
                    return await self._group_commit.commit(pending, relative, placed_hooks)
                return placed_hooks(pending.commit(relative))
            except UnsafePath as exc:
                raise _Failed(UNSAFE_UID, str(exc)) from None
            except OSError as exc:
                raise _Failed(
                    status.OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}"
                ) from None
            finally:
                pending = spooled = None
        finally:
            if pending is not None:
                pending.discard()
            if spooled is not None:
                spooled.discard_now()

    def _one_per_instance(self, placed: Placed, instance_uid: str) -> Placed:
        """A file placed at a new path for an instance stored before at another: the layout
        put the new version elsewhere (a corrected PatientID, with {PatientID} in it). The
        duplicate policy applies as it does at one path: keep drops the new file, overwrite
        removes the old one, rename keeps both (the first stays the one indexed). Without
        this, keep and overwrite both left two files of one instance, and the index half of
        each (walkthrough 5). A damaged first copy never wins over the good new one.

        Whatever the outcome at the new path: it may have been taken already by a copy of
        this instance that an overwrite or a keep cut short by a crash left (between placing
        one file and removing the other); that leftover stayed for good (walkthrough 6a)."""
        if self.stored_at is None:
            return placed
        prior = self.stored_at(instance_uid)
        if prior is None:
            return placed
        old = self.archive.root / prior
        if old == placed.path:
            return placed
        policy = self.archive.on_duplicate
        if policy is DuplicatePolicy.RENAME:
            if file_damage(old) is None:
                return Placed(placed.path, Outcome.RENAMED)  # the first stays the indexed one
            # Both kept, as rename does; the good new copy is the one queries and retrievals
            # use (the damaged first one stayed indexed, and every C-GET of it failed).
            log.warning("%s is damaged: the copy just received, %s, is indexed", old, placed.path)
            return Placed(placed.path, Outcome.STORED)
        if policy is DuplicatePolicy.KEEP:
            if file_damage(old) is not None:
                # As at one path: the damaged first copy goes, the good new one stays (it
                # was the one thrown away, and success answered).
                log.warning("%s was damaged: replaced by the copy just received", old)
                self.archive.remove(old)
                return Placed(placed.path, Outcome.REPLACED_DAMAGED)
            self.archive.remove(placed.path)
            return Placed(old, Outcome.KEPT_EXISTING)
        self.archive.remove(old)  # overwrite
        return Placed(placed.path, Outcome.OVERWROTE)

    def _check(self, scanner: DatasetScanner, rq: CStoreRQ) -> None:
        """The data set must be the instance the command names (PS3.4 B.2.2)."""
        found = _text(scanner.values.get(SOP_INSTANCE_UID))
        if found != rq.affected_sop_instance_uid:
            # The comment has room for 24 characters of it: a cut is marked (a cut UID looked
            # whole, and five instances read alike, walkthrough 7c); the log has it all.
            shown = found if len(found) <= 24 else found[:21] + "..."
            what = quoted(shown) if found else "missing"
            raise _Failed(
                SOP_INSTANCE_MISMATCH,
                f"data set SOP Instance UID {what} != command",
                f"data set SOP Instance UID {quoted(found) if found else 'missing'} is not the "
                f"command's {quoted(rq.affected_sop_instance_uid)}",
            )
        sop_class = _text(scanner.values.get(SOP_CLASS_UID))
        if sop_class and sop_class != rq.affected_sop_class_uid:
            raise _Failed(
                status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                "data set SOP Class UID differs from the command's",
            )

    def _run_placed_hooks(self, stored: StoredInstance) -> None:
        for hook in self.on_placed:
            try:
                hook(stored)
            except Exception as exc:
                log.exception("on_placed hook failed for %s", stored.path)
                raise _Failed(status.PROCESSING_FAILURE, f"stored, not registered: {exc}") from exc

    async def _notify(self, stored: StoredInstance) -> None:
        for hook in self.on_stored:
            try:
                result = hook(stored)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.exception("on_stored hook failed for %s", stored.path)
                raise _Failed(status.PROCESSING_FAILURE, f"stored, not registered: {exc}") from exc
        log.debug("%s %s -> %s", stored.outcome.value, stored.sop_instance_uid, stored.path)


# --- acceptor policy for storage contexts ---------------------------------------------------

# Public syntaxes whose "data set" is not a DICOM data set we can check and store as Part 10:
# MIME and XML encodings (PS3.5 A.9, A.10), and retired Papyrus 3.
_NOT_PARSEABLE = frozenset({"1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2", "1.2.840.10008.1.20"})
# Uncompressed data set encodings, in our order of preference (PS3.5 §10, A.5).
_UNCOMPRESSED_ORDER = (
    uids.EXPLICIT_VR_LE,
    uids.IMPLICIT_VR_LE,
    uids.DEFLATED_EXPLICIT_VR_LE,
    uids.EXPLICIT_VR_BE,
)


def _lossless_compressed(ts: str) -> bool:
    from netdicom.core.sop_classes import LOSSLESS_COMPRESSED

    return ts in LOSSLESS_COMPRESSED


def choose_storage_syntax(
    offered: tuple[str, ...], prefer: tuple[str, ...] = ()
) -> str | ContextResult:
    """The transfer syntax to accept for a storage context offering `offered`.

    `prefer` (from `--prefer-ts`) wins when offered. Otherwise: the one syntax we can parse if
    only one was offered; else a lossless compressed one (the first offered), then explicit VR
    little endian, implicit, deflated, big endian; a lossy syntax only when no uncompressed
    one was offered in the context. Private or unknown syntaxes are never chosen: a context
    offering nothing else is rejected with reason 4 (PS3.8 Table 9-18).
    """
    from netdicom.core.sop_classes import known_transfer_syntaxes

    known = known_transfer_syntaxes()
    usable = [ts for ts in offered if ts in known and ts not in _NOT_PARSEABLE]
    if not usable:
        return ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
    for ts in prefer:
        if ts in usable:
            return ts
    if len(usable) == 1:
        return usable[0]
    for ts in usable:
        if _lossless_compressed(ts):
            return ts
    for ts in _UNCOMPRESSED_ORDER:
        if ts in usable:
            return ts
    # No uncompressed syntax offered: the first lossy one keeps the instance as the sender has it.
    return next(ts for ts in usable if is_compressed(ts))


def _sender(assoc: Association) -> str:
    """The AE title of the peer that sends the C-STOREs: the calling AE of an association we
    accepted, the called AE of one we requested (a C-GET: the instances come back on it).
    It is the file's Source AE Title (PS3.10 7.1) and what the log names."""
    negotiated = assoc.negotiated
    assert negotiated is not None
    return negotiated.called_ae if assoc.requestor else negotiated.calling_ae


def choose_sending_syntax(
    offered: tuple[str, ...], held: Mapping[str, int] | None = None
) -> str | ContextResult:
    """The transfer syntax to accept for a storage context we send on (C-GET). An instance is
    sent as it is, or converted from an uncompressed syntax to explicit or implicit VR little
    endian (never to big endian, retired): so each syntax we can send carries only some of
    the instances. `held`: how many instances of the context's SOP class the archive holds in
    each transfer syntax. The syntax that carries the most of them wins; on a tie the
    uncompressed one, then the requestor's order. Taking the requestor's first choice
    blindly failed every uncompressed instance and every SR when `getscu +xy` put JPEG
    Baseline first; taking explicit VR LE always failed its JPEG instances."""
    from netdicom.core.sop_classes import known_transfer_syntaxes

    known = known_transfer_syntaxes()
    sendable = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)
    candidates = [
        ts
        for ts in offered
        if ts in known and ts not in _NOT_PARSEABLE and (is_compressed(ts) or ts in sendable)
    ]
    if not candidates:
        return choose_storage_syntax(offered)
    counts = held or {}
    convertible = sum(n for ts, n in counts.items() if not is_compressed(ts))

    def rank(ts: str) -> tuple[int, bool, int]:
        carried = counts.get(ts, 0) if is_compressed(ts) else convertible
        return carried, not is_compressed(ts), -offered.index(ts)

    return max(candidates, key=rank)


def is_storage_sop_class(sop_class: str, *, accept_unknown: bool) -> bool:
    """A known Storage SOP class, or (when `accept_unknown`) a UID pydicom does not know at
    all, e.g. a private or newer SOP class; never a known non-storage UID."""
    from pydicom._uid_dict import UID_dictionary

    from netdicom.core.sop_classes import storage_sop_classes

    if sop_class in storage_sop_classes():
        return True
    return accept_unknown and sop_class not in UID_dictionary and is_valid_uid(sop_class)


def storage_chooser(
    *, accept_unknown: bool = True, prefer: tuple[str, ...] = ()
) -> Callable[[str, tuple[str, ...]], str | ContextResult]:
    """A TransferSyntaxChooser for storage contexts (see `choose_storage_syntax`)."""

    def choose(abstract_syntax: str, offered: tuple[str, ...]) -> str | ContextResult:
        if not is_storage_sop_class(abstract_syntax, accept_unknown=accept_unknown):
            return ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
        return choose_storage_syntax(offered, prefer)

    return choose


__all__ = [
    "DEFLATED_SYNTAXES",
    "HELD_LIMIT",
    "LIMIT_EXCEEDED",
    "SOP_INSTANCE_MISMATCH",
    "SPOOL_ABOVE",
    "UNSAFE_UID",
    "OnPlaced",
    "OnStored",
    "StorageSCP",
    "StoreLimits",
    "StoredInstance",
    "choose_sending_syntax",
    "choose_storage_syntax",
    "is_storage_sop_class",
    "storage_chooser",
]
