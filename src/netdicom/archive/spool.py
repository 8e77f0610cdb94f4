"""File work of the Storage SCP off the event loop: a received instance larger than a few
hundred KB is created and written by worker threads, in order, while the event loop goes on
receiving (the rest of this data set, or other associations' data sets). Durably, the written
file is then handed over (`finish`) to the group commit, which syncs and names it with the
instances received meanwhile (archive.group_commit); without fsync the worker puts it in place
itself (`commit`).

Why: creating a file and writing megabytes (into the page cache, or to the disk with O_DIRECT
when durable: archive.direct_io) are system calls that release the GIL but block the thread
that makes them. On the event loop they add up with the network work; here they overlap with
it, and with each other across associations.

The event loop hands over views of the received bytes (transport.receiver never reuses their
memory) in batches, or, for an O_DIRECT file, the reused page-aligned stages it copied them
into; at most a few MiB are in flight per file, and 32 MiB over all files, so memory stays
bounded whatever the size or number of data sets. Errors (ENOSPC, EIO...) are
kept and reported when the data set ends: the association goes on, the instance fails with
A7xx.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Final, TypeVar

from netdicom.archive.direct_io import Stage, StageFiller
from netdicom.archive.writer import Archive, PendingFile, Placed, keep

__all__ = ["Spool", "SpooledFile"]

T = TypeVar("T")
# What a batch holds: views of received bytes, or (O_DIRECT) stages filled with them.
Piece = memoryview | bytes | bytearray | Stage

# Bytes gathered before they are handed to a worker (one hand-over per batch, not per PDU).
# An instance smaller than this goes to disk in a single job (create, write, sync, place):
# every hand-over costs the event loop and the workers a turn at the GIL.
_BATCH: Final = 1 << 20
# Bytes handed over and not yet written before the receiver waits for the disk: per file, and
# over all the files of the spool (an asynchronous operations window lets a peer finish
# sending several instances before the first is on disk).
_IN_FLIGHT: Final = 4 << 20
_SPOOL_IN_FLIGHT: Final = 32 << 20
_WORKERS: Final = 8
# How long a discard on the way out (an aborted association) waits for the file's writer.
_DISCARD_WAIT: Final = 30.0


class Spool:
    """The worker threads of one Storage SCP (started when first needed)."""

    def __init__(self, workers: int = _WORKERS, in_flight_limit: int = _SPOOL_IN_FLIGHT) -> None:
        self._workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.in_flight_limit = in_flight_limit
        self.in_flight = 0  # bytes handed over by every file and not yet written
        self.peak_in_flight = 0  # the most there ever was (tests read it)

    def add(self, count: int) -> None:
        with self._lock:
            self.in_flight += count
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def done(self, count: int) -> None:
        with self._lock:
            self.in_flight -= count

    @property
    def behind(self) -> bool:
        """True when the disk is more than in_flight_limit bytes behind the network."""
        return self.in_flight > self.in_flight_limit

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._workers, thread_name_prefix="netdicom-spool"
                )
            return self._executor

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None


class _Serial:
    """Jobs of one file, run one after the other on the spool's threads."""

    __slots__ = ("_executor", "_jobs", "_lock", "_running")

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._jobs: deque[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = deque()
        self._running = False

    def submit(self, job: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            self._jobs.append((future, job))
            if self._running:
                return future
            self._running = True
        self._executor.submit(self._run)
        return future

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    return
                future, job = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to whoever awaits the job
                future.set_exception(exc)


class SpooledFile:
    """One instance being received: `write()` views of its bytes as they come, then
    `await finish()` (durable: for the group commit) or `await commit(relative)`, or
    `await discard()` / `discard_now()`.

    `error` is set (by a worker) when creating or writing the file failed: the caller stops
    handing over bytes and reports the failure; nothing is left on disk."""

    __slots__ = (
        "_archive",
        "_batch",
        "_batch_bytes",
        "_filler",
        "_header",
        "_in_flight",
        "_in_flight_bytes",
        "_pending",
        "_serial",
        "_spool",
        "error",
        "size",
    )

    def __init__(self, spool: Spool, archive: Archive, header: bytes) -> None:
        self._archive = archive
        self._spool = spool
        self._serial = _Serial(spool.executor())
        self._pending: PendingFile | None = None
        self.error: OSError | None = None
        self.size = len(header)  # bytes of the file (header included), as handed over
        self._batch: list[Piece] = []
        self._batch_bytes = 0
        self._in_flight: deque[tuple[concurrent.futures.Future[None], int]] = deque()
        self._in_flight_bytes = 0
        # For an O_DIRECT file the event loop copies the bytes into stages as they come (the
        # receiver's buffers are free again at once, and a worker needs the GIL only to start
        # and end a write): whole stages are handed over, the partial last one at the end.
        self._filler = StageFiller(archive.stages) if archive.direct_io else None
        if self._filler is not None:
            self._batch.extend(self._filler.add(header))
            header = b""
        # The file is created by the first job handed over (with the first batch or at commit).
        self._header: bytes | None = header

    # --- the event loop's side ----------------------------------------------------------------

    async def write(self, data: memoryview | bytes | bytearray) -> None:
        """Queue `data` (not copied unless staged or small, writer.keep: it must not change);
        waits only when the disk is behind."""
        if self._filler is not None:
            for stage in self._filler.add(data):
                self._batch.append(stage)
                self._batch_bytes += len(stage)
        else:
            keep(self._batch, data)  # type: ignore[arg-type]  # no Stage without a filler
            self._batch_bytes += len(data)
        self.size += len(data)
        if self._batch_bytes >= _BATCH:
            self._hand_over()
            await self._wait_for_disk(_IN_FLIGHT)

    async def commit(self, relative: PurePosixPath, after: Callable[[Placed], T]) -> T:
        """Write what is left, make the file durable, put it at `relative`, and return what
        `after` (run on the worker, once the file is in place) makes of it. Raises what
        Archive.place raises (OSError, UnsafePath), or what `after` raises."""
        # What this file still has in flight is bounded by the spool's limit only: the
        # commit may run in the background while the peer sends its next instance.
        await self._wait_for_disk(None)
        future, _ = self._submit(lambda: after(self._commit(relative)), last=True)
        return await asyncio.wrap_future(future)

    async def _wait_for_disk(self, own_limit: int | None) -> None:
        """Wait for this file's oldest writes while it has more than `own_limit` bytes in
        flight, or the whole spool is behind."""
        while self._in_flight and (
            (own_limit is not None and self._in_flight_bytes > own_limit) or self._spool.behind
        ):
            future, count = self._in_flight.popleft()
            self._in_flight_bytes -= count
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)

    async def finish(self) -> PendingFile:
        """Write what is left and hand over the temporary file, written but not synced nor
        named (for the group commit); raises the OSError that creating or writing it met.
        On failure or cancellation nothing is left behind."""
        await self._wait_for_disk(None)
        future, _ = self._submit(self._detach, last=True)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Whichever way the job went (skipped, or ran and handed the file over), the file
            # is discarded: by this queued job, or when the handed-over file comes back.
            self._serial.submit(self._discard)
            future.add_done_callback(_discard_handed_over)
            raise

    async def discard(self) -> None:
        """Drop the file (and what is queued); returns once nothing is left on disk."""
        self._drop_batch()
        future = self._serial.submit(self._discard)
        await asyncio.wrap_future(future)

    def discard_now(self) -> None:
        """As discard(), blocking (for a `finally` on the way out of a cancelled task)."""
        self._drop_batch()
        if self.error is None:
            self.error = OSError("discarded")
        future = self._serial.submit(self._discard)
        with contextlib.suppress(Exception):
            future.result(_DISCARD_WAIT)

    def _hand_over(self) -> None:
        future, count = self._submit(lambda: None)
        self._in_flight.append((future, count))
        self._in_flight_bytes += count

    def _drop_batch(self) -> None:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        _give_back(self._archive, batch)
        if self._filler is not None:
            self._filler.drop()

    def _submit(
        self, then: Callable[[], T], *, last: bool = False
    ) -> tuple[concurrent.futures.Future[T], int]:
        """Hand the batch gathered so far (`last`: and a partial stage) to the file's worker,
        which writes it and then runs `then`; the future of that, and the bytes handed over
        (counted in the spool's bytes in flight until written)."""
        if last and self._filler is not None:
            stage = self._filler.take_last()
            if stage is not None:
                self._batch.append(stage)
        batch = self._take_batch()
        count = sum(len(piece) for piece in batch)
        self._spool.add(count)

        def job() -> T:
            try:
                self._write(batch)
            finally:
                self._spool.done(count)
            return then()

        return self._serial.submit(job), count

    def _take_batch(self) -> list[Piece]:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if self._header is not None:
            batch.insert(0, self._header)  # the first job creates the file
            self._header = None
        return batch

    # --- the workers' side --------------------------------------------------------------------

    def _begin(self, header: bytes) -> None:
        try:
            self._pending = self._archive.begin(header, large=True)
        except OSError as exc:
            self.error = exc

    def _write(self, batch: list[Piece]) -> None:
        if self._pending is None and self.error is None:
            header, *batch = batch
            assert not isinstance(header, Stage)
            self._begin(bytes(header))
        pending = self._pending
        if self.error is not None or pending is None:
            _give_back(self._archive, batch)
            return
        taken = 0
        try:
            for piece in batch:
                taken += 1
                if isinstance(piece, Stage):
                    pending.write_stage(piece)  # given back to the pool, written or not
                else:
                    pending.write(piece)
        except OSError as exc:
            self.error = exc
            pending.discard()
            _give_back(self._archive, batch[taken:])

    def _detach(self) -> PendingFile:
        pending, self._pending = self._pending, None
        if self.error is None and pending is not None:
            # An O_DIRECT file's last block is written here, on the file's worker; place_all
            # would do it too (it closes every file's writes before syncing), but on the
            # group commit's one thread, and with the error reported for the group.
            try:
                pending.close_writes()
            except OSError as exc:
                self.error = exc
                pending.discard()
        if self.error is not None or pending is None:
            raise self.error or OSError("the file was not created")
        return pending

    def _commit(self, relative: PurePosixPath) -> Placed:
        return self._detach().commit(relative)

    def _discard(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.discard()


def _give_back(archive: Archive, pieces: list[Piece]) -> None:
    """Stages that will not be written go back to the pool."""
    for piece in pieces:
        if isinstance(piece, Stage):
            archive.stages.give(piece)


def _discard_handed_over(future: concurrent.futures.Future[PendingFile]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().discard()
