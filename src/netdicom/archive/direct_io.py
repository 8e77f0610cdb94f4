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
A file system that refuses O_DIRECT (tmpfs, some network file systems) is found out when the
archive opens (`direct_io_works`); one that refuses a write later gets the rest of that file
through the page cache (`EINVAL`: the flag is dropped with fcntl).

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

__all__ = ["BLOCK", "O_DIRECT", "STAGE", "DirectWriter", "StagePool", "direct_io_works"]

O_DIRECT: Final = getattr(os, "O_DIRECT", 0)
# Alignment that suits 512-byte and 4 KiB logical blocks alike.
BLOCK: Final = 4096
# Bytes written per call: large enough for the device, small enough to keep in a pool.
STAGE: Final = 1 << 20
# Free stages kept for reuse; more are unmapped when given back (memory stays bounded).
_KEEP: Final = 16

FileWrite = Callable[[int, memoryview], int]


def direct_io_works(directory: Path) -> bool:
    """Whether a temporary file in `directory` accepts an aligned O_DIRECT write."""
    if not O_DIRECT:
        return False
    flags = os.O_WRONLY | O_DIRECT | os.O_CLOEXEC
    tmpfile = getattr(os, "O_TMPFILE", 0)
    probe = directory / f".direct-{os.getpid()}-{threading.get_ident()}"
    try:
        if tmpfile:
            fd = os.open(directory, flags | tmpfile, 0o600)
        else:
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
        if not tmpfile:
            with contextlib.suppress(OSError):
                os.unlink(probe)


class StagePool:
    """Page-aligned buffers (anonymous mmaps) of STAGE bytes, reused across files: a new
    mapping would cost a page fault per page on first touch."""

    def __init__(self) -> None:
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, STAGE)

    def give(self, stage: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < _KEEP:
                self._free.append(stage)
                return
        stage.close()


class DirectWriter:
    """Appends to an O_DIRECT descriptor through a stage; `close_writes` writes the tail.
    Used by one thread at a time (the spool writes a file's batches in order)."""

    __slots__ = ("_direct", "_fd", "_fill", "_pool", "_stage", "_view", "_write", "size")

    def __init__(self, fd: int, pool: StagePool, write: FileWrite) -> None:
        self._fd = fd
        self._pool = pool
        self._write = write
        self._stage: mmap.mmap | None = pool.take()
        self._view = memoryview(self._stage)
        self._fill = 0
        self._direct = True
        self.size = 0  # bytes appended

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`; raises OSError (ENOSPC, EIO...)."""
        source = memoryview(data).cast("B")
        while source:
            count = min(len(source), STAGE - self._fill)
            self._view[self._fill : self._fill + count] = source[:count]
            self._fill += count
            self.size += count
            source = source[count:]
            if self._fill == STAGE:
                self._flush(STAGE)
                self._fill = 0

    def close_writes(self) -> None:
        """Write what is staged (the last block padded, then cut to size); idempotent."""
        if self._stage is None:
            return
        try:
            if self._fill:
                if self._direct:
                    padded = -(-self._fill // BLOCK) * BLOCK
                    self._view[self._fill : padded] = bytes(padded - self._fill)
                    self._flush(padded)
                    os.ftruncate(self._fd, self.size)
                else:
                    self._flush(self._fill)
                self._fill = 0
        finally:
            self.release()

    def release(self) -> None:
        """Give the stage back (the file is done with, or dropped)."""
        stage, self._stage = self._stage, None
        if stage is not None:
            self._view.release()
            self._pool.give(stage)

    def _flush(self, count: int) -> None:
        view = self._view[:count]
        try:
            while view:
                try:
                    written = self._write(self._fd, view)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or not self._direct:
                        raise
                    # The file system took the probe but not this write: the page cache
                    # it is, for the rest of this file.
                    flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                    fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT)
                    self._direct = False
                    continue
                if written <= 0:
                    raise OSError(errno.ENOSPC, "no space left on device")
                view = view[written:]
        finally:
            view.release()
