"""Storage service (PS3.4 Annex B) as SCU: send files with C-STORE over one or more associations.

Every file ends in exactly one FileOutcome: stored, stored with a warning, failed (with the
status or the reason) or skipped. When an association ends early, the file in flight and
every file not yet sent are reported as failed with the reason, never dropped. Each file is
checked again just before it is sent (datasets.recheck): one that changed since planning fails
alone, and one cut short in the middle of its own message costs its association but not the
run (the rest go over a new one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from netdicom.core.datasets import (
    DicomFile,
    FileChanged,
    FileSource,
    NotSendable,
    encode_dataset,
)
from netdicom.core.dimse import (
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    StatusCategory,
    UnsupportedCommand,
    category,
    status_name,
)
from netdicom.core.errors import (
    AssociationRejected,
    NetDicomError,
    NoAcceptedContext,
    RemoteProtocolError,
)
from netdicom.core.records import frozen
from netdicom.services.peer import Peer
from netdicom.services.planning import Batch, Scan, Skipped, batches, choose
from netdicom.services.responses import peer_comment
from netdicom.services.session import (
    ClientOptions,
    command_name,
    negotiated_window,
    next_command,
    open_association,
)
from netdicom.transport.association import Association

# C-STOREs proposed to be outstanding at once on one association (`store --window`).
DEFAULT_WINDOW = 256


class Result(Enum):
    STORED = "stored"
    WARNING = "warning"  # stored, with a warning status (PS3.4 B.2.3: B000, B006, B007)
    FAILED = "failed"
    SKIPPED = "skipped"  # not an instance: not DICOM, a DICOMDIR, a directory without -r


@frozen
class FileOutcome:
    path: Path
    result: Result
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    status: int | None = None
    status_name: str | None = None
    reason: str | None = None
    transfer_syntax: str | None = None  # the syntax it was sent in
    converted: bool = False
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.result in (Result.STORED, Result.WARNING)


class StoreObserver(Protocol):
    """Progress callbacks; called from the event loop, so keep them cheap."""

    def opened(self, assoc: Association) -> None: ...

    def sent_bytes(self, count: int) -> None: ...

    def finished(self, outcome: FileOutcome) -> None: ...


@dataclass(slots=True)
class StoreReport:
    # Left out of repr(): Python 3.11's asyncio.Runner reprs the main task's result when it
    # puts the SIGINT handler back (signal._int_to_enum), and a report of 100 000 files
    # took seconds to format at exit.
    outcomes: list[FileOutcome] = field(default_factory=list, repr=False)
    elapsed: float = 0.0
    associations: int = 0
    # The first association-level failure (rejection, abort, timeout...), if any.
    error: NetDicomError | None = None
    # Extra associations the peer refused for lack of resources while others carried every
    # file (see _spare): no error, nothing was lost; the CLI mentions them.
    refused: list[AssociationRejected] = field(default_factory=list)

    def count(self, result: Result) -> int:
        return sum(1 for o in self.outcomes if o.result is result)

    @property
    def bytes_sent(self) -> int:
        return sum(o.bytes for o in self.outcomes if o.ok)

    @property
    def all_stored(self) -> bool:
        return all(o.ok or o.result is Result.SKIPPED for o in self.outcomes)


class _NullObserver:
    def opened(self, assoc: Association) -> None:
        pass

    def sent_bytes(self, count: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        pass


class _Counting:
    """A DatasetSource that reports progress as pieces are read."""

    __slots__ = ("_observer", "_source", "length")

    def __init__(self, source: FileSource, observer: StoreObserver) -> None:
        self._source = source
        self._observer = observer
        self.length = source.length

    def read(self, size: int) -> bytes:
        piece = self._source.read(size)
        self._observer.sent_bytes(len(piece))
        return piece

    def readinto(self, buffer: memoryview) -> int:
        count = self._source.readinto(buffer)
        self._observer.sent_bytes(count)
        return count


def failed_outcome(info: DicomFile, reason: str, status: int | None = None) -> FileOutcome:
    """A file that was not stored, and why."""
    return FileOutcome(
        info.path,
        Result.FAILED,
        info.sop_class_uid,
        info.sop_instance_uid,
        status=status,
        status_name=status_name(status, "store") if status is not None else None,
        reason=reason,
    )


@frozen
class _Sent:
    """A C-STORE-RQ sent whose response is outstanding."""

    info: DicomFile
    message_id: int
    transfer_syntax: str
    converted: bool
    size: int


async def _send(
    assoc: Association, info: DicomFile, observer: StoreObserver
) -> _Sent | FileOutcome:
    """Send the C-STORE-RQ and data set of one file; a FAILED outcome when it cannot be sent
    (no usable context, cannot convert or read, changed since planning); association-level
    problems raise, and so does FileChanged when the file shrinks in the middle of its send."""
    negotiated = assoc.negotiated
    assert negotiated is not None
    try:
        choice = choose(negotiated.accepted, info)
    except NotSendable as exc:
        why = [r.describe() for r in negotiated.rejected if r.abstract_syntax == info.sop_class_uid]
        return failed_outcome(info, f"{exc} ({'; '.join(why)})" if why else str(exc))
    message_id = assoc.message_ids.next()
    request = CStoreRQ(message_id, info.sop_class_uid, info.sop_instance_uid)
    if choice.convert:
        try:
            # pydicom decodes and encodes: off the event loop, other associations keep going.
            # check=True: the bytes converted are read once and checked to be the planned
            # instance, so the data set matches the request's Affected SOP Instance UID.
            data = await asyncio.to_thread(encode_dataset, info, choice.transfer_syntax, check=True)
        except (NotSendable, OSError) as exc:
            assoc.message_ids.release(message_id)
            return failed_outcome(info, _why_not(exc))
        await assoc.send_message(choice.context.context_id, request, dataset=data)
        observer.sent_bytes(len(data))
        size = len(data)
    else:
        try:
            # Checked on the descriptor it is then streamed from (datasets.recheck).
            source = FileSource.checked(info)
        except (NotSendable, OSError) as exc:
            assoc.message_ids.release(message_id)
            return failed_outcome(info, _why_not(exc))
        try:
            await assoc.send_message(
                choice.context.context_id, request, dataset=_Counting(source, observer)
            )
        finally:
            source.close()
        size = source.length  # with the pad of an odd deflated stream, if any
    return _Sent(info, message_id, choice.transfer_syntax, choice.convert, size)


def _why_not(exc: NotSendable | OSError) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc)


def _outcome(sent: _Sent, response: DimseMessage | UnsupportedCommand) -> FileOutcome:
    if not isinstance(response, CStoreRSP):
        raise RemoteProtocolError(f"expected a C-STORE-RSP, got {command_name(response)}")
    info = sent.info
    code = response.status
    kind = category(code)
    result = Result.FAILED
    reason = peer_comment(response.error_comment, response.offending_element)
    if kind is StatusCategory.SUCCESS:
        result = Result.STORED
        reason = None
    elif kind is StatusCategory.WARNING:
        result = Result.WARNING
    named = (response.affected_sop_instance_uid or "").strip(" \x00")
    if named and named != info.sop_instance_uid and result is not Result.FAILED:
        # PS3.7 9.3.1.2: the response's Affected SOP Instance UID is the request's. One that
        # names another instance leaves in doubt what the peer stored: a warning that says so.
        result = Result.WARNING
        reason = f"the peer's response names another instance ({named[:64]})"
    return FileOutcome(
        info.path,
        result,
        info.sop_class_uid,
        info.sop_instance_uid,
        status=code,
        status_name=status_name(code, "store"),
        reason=reason,
        transfer_syntax=sent.transfer_syntax,
        converted=sent.converted,
        bytes=0 if result is Result.FAILED else sent.size,
    )


class _Window:
    """C-STOREs outstanding on one association under an asynchronous operations window
    (PS3.7 D.3.3.3): up to `size` sent before their responses, matched on Message ID Being
    Responded To whatever order they come back in."""

    __slots__ = ("_assoc", "_sent", "_timeout", "size")

    def __init__(self, assoc: Association, size: int, timeout: float | None) -> None:
        self._assoc = assoc
        self._timeout = timeout
        self.size = size
        self._sent: dict[int, _Sent] = {}

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, sent: _Sent) -> None:
        self._sent[sent.message_id] = sent

    def infos(self) -> list[DicomFile]:
        """The files sent and not answered, in the order they were sent."""
        return [sent.info for sent in self._sent.values()]

    async def take(self) -> FileOutcome:
        """Wait for the next response; the outcome of the file it answers."""
        message = await next_command(self._assoc, self._timeout)
        # Anything wrong raises with every file of the window still outstanding: they are
        # reported not stored when the association is given up, none is lost from the report.
        if not isinstance(message, CStoreRSP):
            raise RemoteProtocolError(f"expected a C-STORE-RSP, got {command_name(message)}")
        responded = message.message_id_being_responded_to
        sent = self._sent.pop(responded, None)
        if sent is None:
            raise RemoteProtocolError(
                f"C-STORE-RSP to message {responded}, which is not outstanding",
                field="Message ID Being Responded To",
            )
        self._assoc.message_ids.release(sent.message_id)
        return _outcome(sent, message)


def skipped_outcome(skipped: Skipped) -> FileOutcome:
    """A path the scan set aside: SKIPPED, or FAILED for a broken DICOM file."""
    result = Result.FAILED if skipped.failed else Result.SKIPPED
    return FileOutcome(skipped.path, result, reason=skipped.reason)


@dataclass(slots=True)
class _Run:
    peer: Peer
    options: ClientOptions
    timeout: float | None
    observer: StoreObserver
    report: StoreReport
    limit: asyncio.Semaphore
    window: int

    def record(self, outcome: FileOutcome) -> None:
        self.report.outcomes.append(outcome)
        self.observer.finished(outcome)

    def fault(self, exc: NetDicomError) -> None:
        if self.report.error is None:
            self.report.error = exc

    async def worker(self, batch: Batch, share: _Shares, index: int) -> None:
        async with self.limit:
            # More than once only after a file cut short mid-send cost an association.
            while share.left():
                assoc = await self._open(batch, share)
                if assoc is None or not await self._session(assoc, share, index):
                    return

    async def _open(self, batch: Batch, share: _Shares) -> Association | None:
        """A new association for the batch; None when it failed (recorded) or when the other
        associations took every file while this one was being negotiated: it is then given
        up quietly (a peer that serves one association at a time, dcmtk's storescp without
        --fork, answers it only once the others are released)."""
        opening = asyncio.ensure_future(
            open_association(self.peer, self.options, batch.contexts, window=self.window)
        )
        emptied = asyncio.ensure_future(share.emptied())
        try:
            await asyncio.wait((opening, emptied), return_when=asyncio.FIRST_COMPLETED)
        finally:
            emptied.cancel()
            if not opening.done():
                opening.cancel()
        if not opening.cancelled() and not opening.done():
            # Cancelled just now: wait for it to end (never raises its exception here).
            await asyncio.wait((opening,))
        if opening.cancelled():
            return None
        exc = opening.exception()
        if exc is None:
            assoc = opening.result()
            if share.left():
                return assoc
            with contextlib.suppress(NetDicomError):
                await assoc.release()  # opened as the last file went out: nothing to do
            return None
        if isinstance(exc, AssociationRejected) and _spare(exc):
            self.report.refused.append(exc)
        elif isinstance(exc, NetDicomError):
            self.fault(exc)
        else:
            raise exc
        return None

    async def _session(self, assoc: Association, share: _Shares, index: int) -> bool:
        """Send files over `assoc` until none is left, then release it. True when it was
        aborted because a file was cut short in the middle of its own send: the rest of the
        files are then for a new association."""
        self.report.associations += 1
        self.observer.opened(assoc)
        info: DicomFile | None = None
        window = _Window(assoc, negotiated_window(assoc), self.timeout)
        try:
            while True:
                while len(window) >= window.size:
                    self.record(await window.take())
                # Nothing left: release at once, not held open for associations still being
                # negotiated (they are given up, see _open).
                info = share.next(index)
                if info is None:
                    break
                sent = await _send(assoc, info, self.observer)
                info = None
                if isinstance(sent, FileOutcome):
                    self.record(sent)
                else:
                    window.add(sent)
            while len(window):
                self.record(await window.take())
        except FileChanged as exc:
            if info is None:
                raise
            await self._cut_short(assoc, window, info, exc)
            return True
        except (NetDicomError, OSError) as exc:
            # The association is unusable after a failure mid-message: say so, give up on
            # it. The file in flight and those sent but not answered are not stored.
            error = exc if isinstance(exc, NetDicomError) else NetDicomError(str(exc))
            self._lost(assoc, window, info, error)
            return False
        except asyncio.CancelledError:
            assoc.abort()
            self._interrupted(window, info)
            raise
        except BaseException:
            assoc.abort()
            raise
        try:
            await assoc.release()
        except NetDicomError as exc:
            # Everything was answered already; a failed release loses nothing.
            self.fault(exc)
        return False

    async def _cut_short(
        self, assoc: Association, window: _Window, info: DicomFile, exc: FileChanged
    ) -> None:
        """A file ended in the middle of its own data set: the message cannot be completed
        (a P-DATA-TF stream has no way to withdraw one, PS3.8 §9.3.5), so the association is
        aborted. That is our doing, not the peer's: the file fails with the reason, and no
        association error is recorded. The C-STOREs sent before it are complete messages the
        peer still answers: their responses are awaited first, so that no stored file is
        reported lost (or sent twice)."""
        self.record(failed_outcome(info, f"{exc}; its association was aborted"))
        try:
            while len(window):
                self.record(await window.take())
        except (NetDicomError, OSError) as error:
            problem = error if isinstance(error, NetDicomError) else NetDicomError(str(error))
            self._lost(assoc, window, None, problem)
            return
        assoc.abort()

    def _interrupted(self, window: _Window, info: DicomFile | None) -> None:
        """Cancelled (Ctrl-C): the files this association had under way get their outcome
        here, where it is known which they are; the caller reports the rest as not sent. One
        sent whole may be stored already: the peer may have taken it in before the A-ABORT
        came, so saying "not sent" would be false, and "not stored" could be too."""
        for sent in window.infos():
            self.record(failed_outcome(sent, f"{_UNANSWERED}: it may have been stored"))
        if info is not None:
            self.record(failed_outcome(info, f"not stored: {_CUT_OFF}"))

    def _lost(
        self, assoc: Association, window: _Window, info: DicomFile | None, error: NetDicomError
    ) -> None:
        self.fault(error)
        # Sent whole and not answered: the peer may have stored them before it went (a
        # server killed mid-run had stored some of its window); "not stored" was false for
        # those, as it is said after Ctrl-C. The one in flight was cut off: not stored.
        for sent in window.infos():
            self.record(
                failed_outcome(sent, f"sent, not answered: it may have been stored ({error})")
            )
        if info is not None:
            self.record(failed_outcome(info, f"not stored: {error}"))
        assoc.abort()


_UNANSWERED = "interrupted after it was sent, before the peer answered"
_CUT_OFF = "interrupted while it was being sent (the association was aborted)"


def _spare(exc: AssociationRejected) -> bool:
    """A refusal for lack of resources: rejected-transient by the presentation provider,
    temporary congestion or local limit exceeded (PS3.8 Table 9-21 (2,3,1), (2,3,2)). Such a
    peer serves fewer associations at once than -j asked for; the others carry the files."""
    return exc.result == 2 and exc.source == 3


class _Shares:
    """The files of one batch, dealt out in turn to its parallel associations: each takes its
    own share from the front, so they run side by side from the start. One that ran out takes
    from the back of the largest share left, whatever its association is doing (running,
    being negotiated, waiting for a slot, gone): uneven sizes even out, a lost association's
    files still go out on the others, and no association is held open waiting for another
    (a peer that serves one association at a time would answer that one only after it)."""

    __slots__ = ("_emptied", "_queues")

    def __init__(self, files: Sequence[DicomFile], parts: int) -> None:
        self._queues = [deque(files[i::parts]) for i in range(parts)]
        self._emptied = asyncio.Event()
        if not self.left():
            self._emptied.set()

    def left(self) -> bool:
        return any(self._queues)

    async def emptied(self) -> None:
        """Wait until every file has been taken."""
        await self._emptied.wait()

    def next(self, index: int) -> DicomFile | None:
        own = self._queues[index]
        if own:
            info = own.popleft()
        else:
            others = [q for q in self._queues if q]
            if not others:
                return None
            info = max(others, key=len).pop()
        if not self.left():
            self._emptied.set()
        return info

    def remaining(self) -> list[DicomFile]:
        left: list[DicomFile] = []
        for queue in self._queues:
            left.extend(queue)
            queue.clear()
        self._emptied.set()
        return left


async def store(
    peer: Peer,
    options: ClientOptions,
    scan: Scan,
    *,
    associations: int = 1,
    timeout: float | None = None,
    observer: StoreObserver | None = None,
    window: int = DEFAULT_WINDOW,
) -> StoreReport:
    """Send every file of `scan`: batches of at most 128 contexts, each over up to
    `associations` parallel associations (in total, never more than that at once).

    `window` > 1 proposes an asynchronous operations window: a peer that grants one gets up to
    that many C-STOREs before their responses (the next file is on its way while the peer
    stores the last); one that does not is sent one file at a time."""
    report = StoreReport()
    run = _Run(
        peer,
        options,
        timeout,
        observer or _NullObserver(),
        report,
        asyncio.Semaphore(max(1, associations)),
        max(1, window),
    )
    for skipped in scan.skipped:
        run.record(skipped_outcome(skipped))
    started = time.perf_counter()
    plan = batches(scan.files)
    shares: list[_Shares] = []
    tasks: list[asyncio.Task[None]] = []
    for batch in plan:
        parts = min(max(1, associations), len(batch.files))
        share = _Shares(batch.files, parts)
        shares.append(share)
        for index in range(parts):
            tasks.append(asyncio.create_task(run.worker(batch, share, index)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    remaining = [info for share in shares for info in share.remaining()]
    if remaining and report.error is None and report.refused:
        # No association took these files: the refusal is why they were not sent (an error
        # then, no longer a note).
        report.error = report.refused[0]
        report.refused.clear()
    reason = f"not sent: {report.error}" if report.error else "not sent"
    if isinstance(report.error, NoAcceptedContext):
        # The error names the contexts, up to a few hundred characters: once is enough (it
        # was written again for every file).
        reason = "not sent: the peer accepted no presentation context (the error says which)"
    for info in remaining:
        run.record(failed_outcome(info, reason))
    report.elapsed = time.perf_counter() - started
    return report
