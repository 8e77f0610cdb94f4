"""Storage service (PS3.4 Annex B) as SCU: send files with C-STORE over one or more associations.

Every file ends in exactly one FileOutcome: stored, stored with a warning, failed (with the
status or the reason) or skipped. When an association ends early, the file in flight and
every file not yet sent are reported as failed with the reason, never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from netdicom.core.datasets import DicomFile, FileSource, NotSendable, encode_dataset
from netdicom.core.dimse import (
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    StatusCategory,
    UnsupportedCommand,
    category,
    status_name,
)
from netdicom.core.errors import NetDicomError, RemoteProtocolError
from netdicom.core.records import frozen
from netdicom.services.peer import Peer
from netdicom.services.planning import Batch, Scan, Skipped, batches, choose
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


def _failed(info: DicomFile, reason: str, status: int | None = None) -> FileOutcome:
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
    (no usable context, cannot convert or read); association-level problems raise."""
    negotiated = assoc.negotiated
    assert negotiated is not None
    try:
        choice = choose(negotiated.accepted, info)
    except NotSendable as exc:
        why = [r.describe() for r in negotiated.rejected if r.abstract_syntax == info.sop_class_uid]
        return _failed(info, f"{exc} ({'; '.join(why)})" if why else str(exc))
    message_id = assoc.message_ids.next()
    request = CStoreRQ(message_id, info.sop_class_uid, info.sop_instance_uid)
    if choice.convert:
        try:
            # pydicom decodes and encodes: off the event loop, other associations keep going.
            data = await asyncio.to_thread(encode_dataset, info, choice.transfer_syntax)
        except NotSendable as exc:
            assoc.message_ids.release(message_id)
            return _failed(info, str(exc))
        await assoc.send_message(choice.context.context_id, request, dataset=data)
        observer.sent_bytes(len(data))
        size = len(data)
    else:
        try:
            source = FileSource(info)
        except OSError as exc:
            assoc.message_ids.release(message_id)
            return _failed(info, f"cannot read: {exc.strerror or exc}")
        try:
            await assoc.send_message(
                choice.context.context_id, request, dataset=_Counting(source, observer)
            )
        finally:
            source.close()
        size = info.dataset_length
    return _Sent(info, message_id, choice.transfer_syntax, choice.convert, size)


def _outcome(sent: _Sent, response: DimseMessage | UnsupportedCommand) -> FileOutcome:
    if not isinstance(response, CStoreRSP):
        raise RemoteProtocolError(f"expected a C-STORE-RSP, got {command_name(response)}")
    info = sent.info
    code = response.status
    kind = category(code)
    result = Result.FAILED
    if kind is StatusCategory.SUCCESS:
        result = Result.STORED
    elif kind is StatusCategory.WARNING:
        result = Result.WARNING
    return FileOutcome(
        info.path,
        result,
        info.sop_class_uid,
        info.sop_instance_uid,
        status=code,
        status_name=status_name(code, "store"),
        reason=None if result is Result.STORED else response.error_comment,
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
            if not share.left(index):
                return
            share.opening(index)
            try:
                assoc = await open_association(
                    self.peer, self.options, batch.contexts, window=self.window
                )
            except NetDicomError as exc:
                self.fault(exc)
                share.give_up(index)
                return
            self.report.associations += 1
            self.observer.opened(assoc)
            share.started(index)
            info: DicomFile | None = None
            window = _Window(assoc, negotiated_window(assoc), self.timeout)
            try:
                while True:
                    while len(window) >= window.size:
                        self.record(await window.take())
                    info = share.next(index)
                    if info is None:
                        if not share.pending():
                            break
                        # Another association of the batch is still opening: if it fails,
                        # its files come to us.
                        await share.changed()
                        continue
                    sent = await _send(assoc, info, self.observer)
                    info = None
                    if isinstance(sent, FileOutcome):
                        self.record(sent)
                    else:
                        window.add(sent)
                while len(window):
                    self.record(await window.take())
            except (NetDicomError, OSError) as exc:
                # The association is unusable after a failure mid-message: say so, give up on
                # it. The file in flight and those sent but not answered are not stored.
                error = exc if isinstance(exc, NetDicomError) else NetDicomError(str(exc))
                self.fault(error)
                for lost in window.infos() + ([] if info is None else [info]):
                    self.record(_failed(lost, f"not stored: {error}"))
                share.give_up(index)
                assoc.abort()
                return
            except BaseException:
                share.give_up(index)
                assoc.abort()
                raise
            try:
                await assoc.release()
            except NetDicomError as exc:
                # Everything was answered already; a failed release loses nothing.
                self.fault(exc)


class _Shares:
    """The files of one batch, dealt out in turn to its parallel associations, so that each
    one that opens has its share (a fast association cannot empty the list while the others
    are still being negotiated). An association that ran out takes from the largest share
    of one that is running or gone (failed to open, or aborted): uneven sizes even out, and a
    lost association's files still go out on the others."""

    __slots__ = ("_change", "_open", "_opening", "_queues")

    def __init__(self, files: Sequence[DicomFile], parts: int) -> None:
        self._queues = [deque(files[i::parts]) for i in range(parts)]
        self._open = [False] * parts  # running or gone: its share may be taken by others
        self._opening = [False] * parts  # negotiating (it holds one of the -j slots)
        self._change = asyncio.Event()

    def opening(self, index: int) -> None:
        self._opening[index] = True

    def left(self, index: int) -> bool:
        return bool(self._queues[index]) or any(
            q for q, taken in zip(self._queues, self._open, strict=True) if taken
        )

    def started(self, index: int) -> None:
        self._open[index] = True
        self._changed()

    def give_up(self, index: int) -> None:
        self._open[index] = True
        self._changed()

    def pending(self) -> bool:
        """Files are held by an association being negotiated (one still waiting for a slot
        is not waited for: it sends its own share once it gets one)."""
        return any(
            q and opening and not taken
            for q, opening, taken in zip(self._queues, self._opening, self._open, strict=True)
        )

    async def changed(self) -> None:
        await self._change.wait()

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def next(self, index: int) -> DicomFile | None:
        own = self._queues[index]
        if own:
            return own.popleft()
        candidates = [q for q, taken in zip(self._queues, self._open, strict=True) if taken and q]
        if not candidates:
            return None
        return max(candidates, key=len).pop()

    def remaining(self) -> list[DicomFile]:
        left: list[DicomFile] = []
        for queue in self._queues:
            left.extend(queue)
            queue.clear()
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
    reason = f"not sent: {report.error}" if report.error else "not sent"
    for share in shares:
        for info in share.remaining():
            run.record(_failed(info, reason))
    report.elapsed = time.perf_counter() - started
    return report
