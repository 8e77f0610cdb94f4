"""Group commit: one thread syncs and names received instances in groups.

A durable store costs two syncs per instance before its success is answered: the file's data
(fdatasync) and the folder that gains its name (fsync). For an instance of a few KB they are
nearly all of the work, and on this kind of disk each is a device flush that costs about the
same for one file as for fifty. So every durable instance is queued here once received, and
one thread takes whatever has queued up while it was busy: it writes the small ones' files
(held in memory, services.store_scp.SPOOL_ABOVE; larger ones were written by the spool's
threads as they arrived), syncs the data of the group, names its files, and syncs their
folders (`Archive.place_all`: one syncfs per step where the kernel reports its errors, else an
fdatasync per file and an fsync per folder). Nothing waits on a timer: an instance arriving at
an idle committer is committed at once, alone, so a peer that sends one instance at a time (no
asynchronous operations window) pays no extra latency; a peer with a window, or several
associations, fill the groups. The answers go back to the event loop in one call per group.

The price of syncfs: it flushes whatever else is dirty on that file system, so a group may
wait for a large instance being written meanwhile, or for another program's writes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Final, TypeVar

from netdicom.archive.writer import Archive, DeferredFile, PendingFile, Placed

__all__ = ["GroupCommit"]

T = TypeVar("T")

# At most this many instances share one group (serve's window: one association's whole
# window): their answers wait for the whole group's syncs, so an unbounded group would hold
# the first ones back for too long.
_MAX_GROUP: Final = 256


class _Job:
    __slots__ = ("after", "file", "future", "loop", "outcome", "relative")

    def __init__(
        self,
        file: DeferredFile | PendingFile,
        relative: PurePosixPath,
        after: Callable[[Placed], Any],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.file = file
        self.relative = relative
        self.after = after
        self.loop = loop
        self.future = future
        self.outcome: tuple[bool, Any] | None = None  # (failed, exception or value)


class GroupCommit:
    """The committer of one archive; `await commit(...)` from any event loop."""

    def __init__(self, archive: Archive, max_group: int = _MAX_GROUP) -> None:
        self.archive = archive
        self.max_group = max_group
        self.groups = 0  # groups committed so far (tests read it)
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._draining = False
        # One thread, started when first needed; a ThreadPoolExecutor because the
        # interpreter joins its threads at exit: a group being synced is finished.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def commit(
        self,
        file: DeferredFile | PendingFile,
        relative: PurePosixPath,
        after: Callable[[Placed], T],
    ) -> asyncio.Future[T]:
        """Create `file` (unless written already), make it durable, put it at `relative`,
        and resolve to what `after` (run on the committer's thread once the file is in place)
        makes of it. Fails with what Archive.place_all reports for it (OSError, UnsafePath) or
        what `after` raises.

        The file is committed even if the awaiting task is cancelled: it was received whole."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(file, relative, after, loop, future)
        with self._lock:
            self._queue.append(job)
            if self._draining:
                return future
            self._draining = True
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="netdicom-commit"
                )
            executor = self._executor
        executor.submit(self._drain)
        return future

    # --- the committer's thread ---------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                group = self._queue[: self.max_group]
                del self._queue[: self.max_group]
            try:
                self._commit(group)
            except BaseException as exc:  # a bug here must not leave peers waiting forever
                for job in group:
                    if job.outcome is None:
                        job.outcome = (True, exc)
            self.groups += 1
            self._deliver(group)

    def _commit(self, group: list[_Job]) -> None:
        created: list[tuple[_Job, PendingFile]] = []
        try:
            for job in group:
                try:
                    file = job.file
                    created.append((job, file if isinstance(file, PendingFile) else file.create()))
                except OSError as exc:
                    job.outcome = (True, exc)
        except BaseException:
            # Nothing reaches place_all: no file of the group may be left behind.
            for _, pending in created:
                pending.discard()
            for job in group:
                if isinstance(job.file, PendingFile):
                    job.file.discard()  # idempotent
            raise
        placed = self.archive.place_all([(pending, job.relative) for job, pending in created])
        for (job, _), result in zip(created, placed, strict=True):
            if isinstance(result, BaseException):
                job.outcome = (True, result)
                continue
            try:
                job.outcome = (False, job.after(result))
            except Exception as exc:
                job.outcome = (True, exc)

    @staticmethod
    def _deliver(group: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in group:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            # RuntimeError: that loop is closed, nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, jobs)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue  # cancelled meanwhile
        failed, value = job.outcome or (True, RuntimeError("not committed"))
        if failed:
            job.future.set_exception(value)
        else:
            job.future.set_result(value)
