"""Writing large received instances with O_DIRECT (open(2)) when the archive is durable.

Why: a durable archive waits for the disk anyway (the group commit syncs before it answers).
Through the page cache every byte is first copied into freshly allocated cache pages, then
written back by the sync; perf on serve receiving 500 CT images (262 MB) put about half of its
CPU time in that copy (`copy_folio_from_iter_atomic`), more than all of its Python. With
O_DIRECT the disk reads the bytes from one reused, page-aligned buffer per file being written:
the copy into it is a memcpy into memory that is already mapped. The sync afterwards still
makes the file's size and blocks durable and flushes the device's cache; ordering and error
reporting are as before.

O_DIRECT wants the buffer, the file offset and the length aligned to the device's logical
block size: bytes are gathered into a `STAGE`-sized buffer and written in whole stages; the
last, partial block is written padded with zeros and the file then truncated to its size.
A file system that refuses O_DIRECT (tmpfs before Linux 6.6, some network file systems) is
found out when the archive opens (`direct_io_works`); one that refuses a write later gets the
rest of that file through the page cache (`EINVAL`: the flag is dropped with fcntl).

Not used without fsync: there nothing waits for the disk, and writing through the cache is
faster.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = [
    "BLOCK",
    "O_DIRECT",
    "STAGE",
    "DirectWriter",
    "Stage",
    "StageFiller",
    "StagePool",
    "direct_io_works",
]

O_DIRECT: Final = getattr(os, "O_DIRECT", 0)
# Alignment that suits 512-byte and 4 KiB logical blocks alike.
BLOCK: Final = 4096
# Bytes written per call: large enough for the device, small enough to keep in a pool.
STAGE: Final = 1 << 20
# Free stages kept for reuse; more are unmapped when given back (memory stays bounded).
_KEEP: Final = 40

FileWrite = Callable[[int, memoryview], int]


def direct_io_works(directory: Path) -> bool:
    """Whether a temporary file in `directory` accepts an aligned O_DIRECT write."""
    if not O_DIRECT:
        return False
    flags = os.O_WRONLY | O_DIRECT | os.O_CLOEXEC
    probe: Path | None = None
    try:
        fd = os.open(directory, flags | getattr(os, "O_TMPFILE", 0), 0o600)
    except OSError:
        # No unnamed files here (or no O_DIRECT): try a named one, as the archive would.
        probe = directory / f".direct-{os.getpid()}-{threading.get_ident()}"
        try:
            fd = os.open(probe, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return False
    buffer = mmap.mmap(-1, BLOCK)
    try:
        return os.write(fd, buffer) == BLOCK
    except OSError:
        return False
    finally:
        buffer.close()
        os.close(fd)
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


class Stage:
    """A page-aligned buffer of STAGE bytes (an anonymous mmap) and how much of it is filled."""

    __slots__ = ("buffer", "fill", "view")

    def __init__(self) -> None:
        self.buffer = mmap.mmap(-1, STAGE)
        self.view = memoryview(self.buffer)
        self.fill = 0

    def __len__(self) -> int:
        return self.fill

    def add(self, source: memoryview) -> memoryview:
        """Copy what fits of `source`; return the rest."""
        count = min(len(source), STAGE - self.fill)
        self.view[self.fill : self.fill + count] = source[:count]
        self.fill += count
        return source[count:]


class StagePool:
    """Stages reused across files: a new mapping costs a page fault per page on first touch.
    Thread-safe: the event loop fills stages, workers write them and give them back."""

    def __init__(self) -> None:
        self._free: list[Stage] = []
        self._lock = threading.Lock()

    def take(self) -> Stage:
        with self._lock:
            if self._free:
                stage = self._free.pop()
                stage.fill = 0
                return stage
        return Stage()

    def give(self, stage: Stage) -> None:
        with self._lock:
            if len(self._free) < _KEEP:
                self._free.append(stage)
                return
        stage.view.release()
        stage.buffer.close()


class StageFiller:
    """Gathers appended bytes into stages of a pool: whole stages come out as they fill, the
    last (partial) one at the end."""

    __slots__ = ("_pool", "_stage")

    def __init__(self, pool: StagePool) -> None:
        self._pool = pool
        self._stage: Stage | None = None

    @property
    def pending(self) -> int:
        """Bytes in the partial stage."""
        return 0 if self._stage is None else self._stage.fill

    def add(self, data: bytes | bytearray | memoryview) -> list[Stage]:
        """Copy `data` in; the stages it filled, in order."""
        full: list[Stage] = []
        source = memoryview(data).cast("B")
        while source:
            if self._stage is None:
                self._stage = self._pool.take()
            source = self._stage.add(source)
            if self._stage.fill == STAGE:
                full.append(self._stage)
                self._stage = None
        return full

    def take_last(self) -> Stage | None:
        stage, self._stage = self._stage, None
        return stage

    def drop(self) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            self._pool.give(stage)


class DirectWriter:
    """Appends to an O_DIRECT descriptor, whole stages at a time; the last, partial stage
    is written padded to BLOCK and the file cut back to its size (`close_writes`). Bytes come
    as stages filled elsewhere (`write_stage`: the spool fills them on the event loop) or are
    copied in (`write`). Used by one thread at a time."""

    __slots__ = ("_closed", "_direct", "_fd", "_filler", "_pool", "_write", "size")

    def __init__(self, fd: int, pool: StagePool, write: FileWrite) -> None:
        self._fd = fd
        self._pool = pool
        self._write = write
        self._filler = StageFiller(pool)
        self._direct = True
        self._closed = False
        self.size = 0  # bytes appended

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` (copied); raises OSError (ENOSPC, EIO...)."""
        self._check_open()
        self.size += memoryview(data).nbytes
        for stage in self._filler.add(data):
            self._write_stage(stage)

    def write_stage(self, stage: Stage) -> None:
        """Append a stage filled elsewhere (given back to the pool after): a whole one, or the
        last one (the file is then complete). Raises OSError as write does."""
        try:
            self._check_open()
            if self._filler.pending:
                raise ValueError("a stage cannot follow bytes copied in")
            self.size += stage.fill
        except BaseException:
            self._pool.give(stage)
            raise
        self._write_stage(stage)

    def close_writes(self) -> None:
        """Write what is staged; idempotent."""
        if not self._closed:
            last = self._filler.take_last()
            if last is not None:
                self._write_stage(last)
            self._closed = True

    def release(self) -> None:
        """Give the stage back (the file is dropped)."""
        self._filler.drop()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the file is complete")

    def _write_stage(self, stage: Stage) -> None:
        try:
            if stage.fill == STAGE:
                self._flush(stage.view)
            elif self._direct:
                self._closed = True  # the last stage: the file cannot take more
                padded = -(-stage.fill // BLOCK) * BLOCK
                stage.view[stage.fill : padded] = bytes(padded - stage.fill)
                self._flush(stage.view[:padded])
                os.ftruncate(self._fd, self.size)
            else:
                self._closed = True
                self._flush(stage.view[: stage.fill])
        finally:
            self._pool.give(stage)

    def _flush(self, view: memoryview) -> None:
        while view:
            try:
                written = self._write(self._fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self._direct:
                    raise
                # The file system took the probe but not this write: the page cache it is,
                # for the rest of this file.
                flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT)
                self._direct = False
                continue
            if written <= 0:
                raise OSError(errno.ENOSPC, "no space left on device")
            view = view[written:]
